"""hvp collect: run a policy in a task and save its episodes as HDF5."""
from __future__ import annotations

import argparse
import os

HELP = "collect episodes with a scripted or random policy into a robomimic-style HDF5 dataset (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="registered task name (see `hvp envs`)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes in the dataset when done")
    parser.add_argument("--policy", default="explore",
                        help="random | smooth | explore | push (goal-directed block pushes) | mpc (latent MPC of "
                             "--model toward each goal image: data where the planner goes) (default: explore)")
    parser.add_argument("--model", help="mpc: run directory of the world model that plans")
    parser.add_argument("--cost", default="temporal", help="mpc: planning cost (see hvp plan --cost)")
    parser.add_argument("--action-noise", type=float, default=0.3, help="mpc: std of Gaussian noise on its actions")
    parser.add_argument("--horizon", type=int, help="mpc: planning horizon H (default: the cpu preset's)")
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
    policy = args.policy
    if policy == "mpc":
        from hvp.policies import PlannerPolicy

        if not args.model:
            raise SystemExit("--policy mpc: name the world model that plans with --model RUN")
        policy = PlannerPolicy(args.model, cost=args.cost, noise=args.action_noise, horizon=args.horizon)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    summaries = simulate(args.env, policy, args.episodes, workers=args.workers, seed=args.seed,
                         out=args.out, env_kwargs=env_kwargs)
    frames = sum(s.frames for s in summaries)
    print(f"wrote {len(summaries)} new episodes ({frames} frames) to {args.out}; "
          f"{args.episodes - len(summaries)} were already there")
    return 0
