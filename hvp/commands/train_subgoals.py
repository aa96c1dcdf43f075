"""hvp train-subgoals: learn the subgoal generator (midpoint CVAE) in a world model's latent space."""
from __future__ import annotations

import argparse

HELP = "train the subgoal generator (conditional VAE proposing midpoint latents) of a world model run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm world model (hvp train --model rssm)")
    parser.add_argument("--data", required=True, help="HDF5 dataset written by hvp collect (triples t, t+k, t+2k)")
    parser.add_argument("--out", help="output folder (default: RUN/subgoals, where hvp plan --hierarchical looks)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="network and training size")
    parser.add_argument("--steps", type=int, help="optimizer updates (overrides the preset)")
    parser.add_argument("--max-offset", type=int, help="largest k of a triple (overrides the preset)")
    parser.add_argument("--held-out", type=float, default=0.1, help="fraction of episodes kept for scoring")
    parser.add_argument("--seed", type=int, help="seed of triples and weights (overrides the preset)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the MLP is small: 1 is fastest)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_dataset
    from hvp.models.subgoal import train_subgoals

    train = {k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("max_offset", args.max_offset))
             if v is not None}
    _, record = train_subgoals(args.run, load_dataset(args.data), args.out, preset=args.preset,
                               train_overrides=train, held_out=args.held_out, threads=args.threads,
                               progress=not args.no_progress)
    for split, score in record["scores"].items():
        print(f"{split:>9}: midpoint RMSE (normalized latent) best of 8 codes {score['best_of_codes']:.3f}, "
              f"straight average {score['average']:.3f}, random frame {score['random_frame']:.3f}")
    print(f"trained on {record['frames']} frames of {record['episodes']} episodes in {record['wall_s']:.0f} s")
    return 0
