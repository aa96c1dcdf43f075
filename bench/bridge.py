"""Bridge benchmark: control-cycle round trips on loopback, sustained rate, memory over a soak.

A cycle is get_obs (64x64x3 uint8 image + float32 [4] state) then send_action (float32 [2])
and its applied echo: two round trips through validation and the safety gate. The robot
side runs in its own process with a constant-image driver, so the bridge is measured,
not the simulator.

    python bench/bridge.py --seconds 300      # the 5-minute soak
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hvp.contracts import ActionLimits
from results_io import write_results


class ConstantDriver:
    """A robot that always sees the same image and applies whatever the gate passes."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        self.state = np.zeros(4, np.float32)
        self.limits = ActionLimits(np.full(2, -1, np.float32), np.full(2, 1, np.float32), max_delta=2.0)
        self.metadata = {"name": "bench", "control_hz": 1000.0, "image_shape": (64, 64, 3), "state_dim": 4, "action_dim": 2}

    def get_obs(self) -> dict[str, np.ndarray]:
        return {"image": self.image, "state": self.state}

    def exec_action(self, action: np.ndarray, t: float) -> np.ndarray:
        return action

    def hold(self) -> None:
        pass


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def serve(seed: int) -> None:
    from hvp.real.server import RobotServer

    server = RobotServer(ConstantDriver(seed), "tcp://127.0.0.1:*")
    print(server.endpoint, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve()
    finally:
        server.close()


def cycle(robot, action: np.ndarray) -> bool:
    """One control cycle; False when the gate refused the action as stale (the machine stalled)."""
    from hvp.real.client import RobotError

    robot.get_obs()
    try:
        robot.send_action(action)
    except RobotError as err:
        if err.code != "stale":
            raise
        return False
    return True


def measure(endpoint: str, server_pid: int, cycles: int, seconds: float, seed: int) -> dict:
    from hvp.real.client import RobotClient

    rng = np.random.default_rng(seed)
    with RobotClient(endpoint) as robot:
        robot.handshake()
        robot.arm()
        for _ in range(200):  # warm up
            cycle(robot, rng.uniform(-1, 1, 2).astype(np.float32))
        latencies = np.empty(cycles)
        stale = 0
        for i in range(cycles):
            action = rng.uniform(-1, 1, 2).astype(np.float32)
            start = time.perf_counter()
            stale += not cycle(robot, action)
            latencies[i] = time.perf_counter() - start
        # Sustained rate and memory: back-to-back cycles for `seconds`.
        rss_start = {"server": rss_mib(server_pid), "client": rss_mib(os.getpid())}
        samples, done, start = [], 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            stale += not cycle(robot, rng.uniform(-1, 1, 2).astype(np.float32))
            done += 1
            if done % 5000 == 0:
                samples.append((round(elapsed, 1), round(rss_mib(server_pid), 2)))
        rss_end = {"server": rss_mib(server_pid), "client": rss_mib(os.getpid())}
    ms = latencies * 1000
    return {
        "cycle_latency_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                             "max": float(ms.max()), "cycles": cycles},
        "sustained_hz": done / elapsed,
        "stale_refusals": stale,  # actions the gate refused because a cycle stalled past the 0.3 s ttl
        "soak_seconds": elapsed,
        "soak_cycles": done,
        "rss_mib_start": rss_start,
        "rss_mib_end": rss_end,
        "rss_growth_mib": {k: rss_end[k] - rss_start[k] for k in rss_end},
        "server_rss_samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="soak length (sustained rate and memory)")
    parser.add_argument("--cycles", type=int, default=5000, help="timed cycles for the latency percentiles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bridge.json"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the robot-side process
    args = parser.parse_args()
    if args.serve:
        serve(args.seed)
        return 0
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--seed", str(args.seed)], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        result = measure(endpoint, server.pid, args.cycles, args.seconds, args.seed)
    finally:
        server.terminate()
        server.wait(timeout=10)
    record = write_results(args.out, args.seed, {"targets": {"p99_ms": 2.0, "sustained_hz": 500}, **result})
    print(json.dumps({k: v for k, v in record.items() if k != "server_rss_samples"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
