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


def _build_driver(spec: str, args: argparse.Namespace):
    scheme, _, target = spec.partition(":")
    if scheme == "sim":
        from hvp.real.drivers import SimDriver
        from hvp.sim import make
        from hvp.sim.randomization import SHIFTS

        if args.shift not in SHIFTS:
            raise SystemExit(f"--shift: expected one of {sorted(SHIFTS)}, got {args.shift!r}")
        return SimDriver(make(target, randomization=SHIFTS[args.shift]), max_delta=args.max_delta, name=spec)
    if scheme == "py":
        from hvp.registry import Entry

        return Entry(spec, target).resolve()()
    raise SystemExit(f"--driver: expected sim:TASK or py:MODULE:FACTORY, got {spec!r}")


def run(args: argparse.Namespace) -> int:
    from hvp.real.keys import ServerCurve
    from hvp.real.server import RobotServer

    curve = ServerCurve.from_dir(args.keys) if args.keys else None
    driver = _build_driver(args.driver, args)
    log = open(args.event_log, "a", buffering=1) if args.event_log else None
    on_event = (lambda event: log.write(json.dumps(event) + "\n")) if log else None
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
        if hasattr(driver, "close"):
            driver.close()
    return 0
