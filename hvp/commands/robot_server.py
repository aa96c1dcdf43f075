"""hvp robot-server: serve a robot driver over the ZMQ bridge (robot side)."""
from __future__ import annotations

import argparse
import json
import signal

HELP = "serve a robot (sim:TASK or py:module:factory) over the ZMQ bridge, with the safety gate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", required=True,
                        help="sim:TASK (an hvp task, e.g. sim:maze-hard) or py:MODULE:FACTORY (your RobotDriver factory)")
    parser.add_argument("--bind", default="tcp://127.0.0.1:5555", help="ZMQ endpoint to bind; port * picks a free one")
    parser.add_argument("--shift", default="none", help="sim only: domain-shift preset emulating a real robot")
    parser.add_argument("--keys", default=None, help="CurveZMQ key folder from `hvp keys` (robot.key_secret, authorized/)")
    parser.add_argument("--insecure-plaintext", action="store_true", help="allow plaintext on a non-loopback address")
    parser.add_argument("--model-hash", default=None, help="refuse planners whose model hash differs")
    parser.add_argument("--max-delta", type=float, default=0.5, help="sim only: largest per-step change of an action component")
    parser.add_argument("--event-log", default=None, help="append one JSON line per safety event (arm, hold, disarm, applied, reject)")
    parser.add_argument("--episode-log", default=None,
                        help="sim only: append the episode's evaluation record (true state, distance to goal, shift) "
                             "as a JSON line at every disarm and at stop; robot side only, the planner never sees it")


def _build_driver(spec: str, args: argparse.Namespace):
    scheme, _, target = spec.partition(":")
    if scheme == "sim":
        from hvp.real.drivers import SimDriver
        from hvp.sim import make
        from hvp.sim.randomization import SHIFTS

        if args.shift not in SHIFTS:
            raise SystemExit(f"--shift: expected one of {sorted(SHIFTS)}, got {args.shift!r}")
        return SimDriver(make(target, randomization=SHIFTS[args.shift]), max_delta=args.max_delta, name=spec,
                         shift=args.shift)
    if scheme == "py":
        from hvp.registry import Entry

        return Entry(spec, target).resolve()()
    raise SystemExit(f"--driver: expected sim:TASK or py:MODULE:FACTORY, got {spec!r}")


def _event_writer(event_log, episode_log, driver):
    """on_event for RobotServer: safety events to `event_log`; at every disarm, the driver's evaluation record of
    the current episode to `episode_log` (the last line of an episode index is the final one). None if neither."""
    def write_episode() -> None:
        if getattr(driver, "episodes", None):
            episode_log.write(json.dumps(driver.evaluation()) + "\n")

    def on_event(event: dict) -> None:
        if event_log:
            event_log.write(json.dumps(event) + "\n")
        if episode_log and event["event"] == "disarm":
            write_episode()

    return (on_event if event_log or episode_log else None), write_episode


def run(args: argparse.Namespace) -> int:
    from hvp.real.keys import ServerCurve
    from hvp.real.server import RobotServer

    curve = ServerCurve.from_dir(args.keys) if args.keys else None
    driver = _build_driver(args.driver, args)
    if args.episode_log and not hasattr(driver, "evaluation"):
        raise SystemExit(f"--episode-log: the driver {args.driver!r} reports no evaluation records (sim:TASK does)")
    log = open(args.event_log, "a", buffering=1) if args.event_log else None
    episode_log = open(args.episode_log, "a", buffering=1) if args.episode_log else None
    on_event, write_episode = _event_writer(log, episode_log, driver)
    try:
        server = RobotServer(driver, args.bind, curve=curve, insecure_plaintext=args.insecure_plaintext,
                             model_hash=args.model_hash, on_event=on_event)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    print(f"hvp robot-server: {args.driver} listening on {server.endpoint} "
          f"({'CURVE' if curve else 'plaintext'})", flush=True)
    try:
        server.serve()
    finally:
        server.close()
        episodes = getattr(driver, "episodes", [])
        successes = sum(e.success for e in episodes)
        print(f"hvp robot-server: stopped after {len(episodes)} episodes, {successes} successful", flush=True)
        if log:
            log.close()
        if episode_log:
            write_episode()
            episode_log.close()
        if hasattr(driver, "close"):
            driver.close()
    return 0
