"""Collection throughput: rendered 64x64 frames/s per task, MuJoCo's default render settings vs hvp's.

    MUJOCO_GL=egl python bench/collect.py                 # all native tasks + robosuite + pybullet
    MUJOCO_GL=egl python bench/collect.py --quick         # fewer episodes

Frames/s counts every rendered observation while collecting with the scripted exploration
policy (physics, rendering, policy and episode resets included; no disk writes), over
`--workers` processes. "default" compiles the same scenes as a scene written without
render settings gets them (4096^2 shadow map, lights casting shadows, multisampling);
"hvp" is what the tasks ship with. Targets (2-core machine): >= 1000 frames/s on the
maze tasks, >= 500 on every native task. Writes bench/results/collect.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from results_io import write_results

NATIVE = ["maze-easy", "maze-medium", "maze-hard", "push", "push-wall", "reach"]
ADAPTERS = ["robosuite-lift", "robosuite-stack", "robosuite-door", "pybullet-kuka-reach", "pybullet-push"]


def frames_per_second(env: str, episodes: int, workers: int, fast_render: bool | None) -> float:
    from hvp.simulate import simulate

    kwargs = {} if fast_render is None else {"fast_render": fast_render}
    started = time.perf_counter()
    result = simulate(env, "explore", episodes, workers=workers, seed=0, env_kwargs=kwargs, progress=False)
    return sum(len(e["image"]) for e in result) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--frames", type=int, default=12000,
                        help="frames per native task at hvp's settings (enough to amortize worker start-up)")
    parser.add_argument("--quick", action="store_true", help="a quarter of the frames, skip the adapters")
    parser.add_argument("--native-only", action="store_true", help="skip the robosuite and pybullet adapters")
    parser.add_argument("--out", default="bench/results/collect.json")
    args = parser.parse_args()
    os.environ.setdefault("LP_NUM_THREADS", "1")  # as the hvp CLI does: one software-GL thread per worker process
    from hvp.sim import ENVS

    frames = args.frames // 4 if args.quick else args.frames
    rows = []
    for env in NATIVE:
        episodes = max(args.workers, frames // ENVS.entry(env).info["horizon"])
        ours = frames_per_second(env, episodes, args.workers, fast_render=True)
        # the default settings are ~40x slower: a few episodes measure them well enough
        naive = frames_per_second(env, 2 * args.workers, args.workers, fast_render=False)
        target = 1000 if env.startswith("maze") else 500
        rows.append({"env": env, "default_fps": naive, "hvp_fps": ours, "speedup": ours / naive,
                     "target_fps": target, "met": ours >= target})
        print(f"{env:<22} default {naive:8.1f}  hvp {ours:8.1f} frames/s  x{ours / naive:5.1f}  "
              f"target {target} {'met' if ours >= target else 'MISSED'}", flush=True)
    for env in [] if args.quick or args.native_only else ADAPTERS:
        try:
            fast = frames_per_second(env, args.workers, args.workers, fast_render=True if "robosuite" in env else None)
            naive = frames_per_second(env, args.workers, args.workers, fast_render=False) if "robosuite" in env else None
        except ImportError as err:
            print(f"{env:<22} skipped: {err}")
            continue
        rows.append({"env": env, "default_fps": naive, "hvp_fps": fast, "speedup": fast / naive if naive else None})
        print(f"{env:<22} default {naive or float('nan'):8.1f}  hvp {fast:8.1f} frames/s", flush=True)
    write_results(args.out, seed=0, record={"workers": args.workers, "frames_per_task": frames, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
