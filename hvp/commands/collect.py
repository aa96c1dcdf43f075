"""hvp collect: run a policy in a task and save its episodes as HDF5."""
from __future__ import annotations

import argparse
import os

HELP = "collect episodes with a scripted or random policy into a robomimic-style HDF5 dataset (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="registered task name (see `hvp envs`)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes in the dataset when done")
    parser.add_argument("--policy", default="explore",
                        help="random | smooth | explore | push (goal-directed block pushes) (default: explore)")
    parser.add_argument("--out", required=True, help="HDF5 file to write; an interrupted run resumes into it")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--image-size", type=int, default=64, help="square image side in pixels")
    parser.add_argument("--shift", default=None, help="domain randomization / shift preset (none, train, mild, strong)")


def run(args: argparse.Namespace) -> int:
    from hvp.simulate import simulate

    env_kwargs: dict = {"image_size": args.image_size}
    if args.shift:
        from hvp.sim.randomization import SHIFTS

        if args.shift not in SHIFTS:
            raise SystemExit(f"--shift: unknown preset {args.shift!r}; choose one of {sorted(SHIFTS)}")
        env_kwargs["randomization"] = SHIFTS[args.shift]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    summaries = simulate(args.env, args.policy, args.episodes, workers=args.workers, seed=args.seed,
                         out=args.out, env_kwargs=env_kwargs)
    frames = sum(s.frames for s in summaries)
    print(f"wrote {len(summaries)} new episodes ({frames} frames) to {args.out}; "
          f"{args.episodes - len(summaries)} were already there")
    return 0
