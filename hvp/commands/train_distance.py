"""hvp train-distance: learn the temporal-distance planning cost of a trained world model."""
from __future__ import annotations

import argparse

HELP = "train the temporal-distance model (control steps between two latents) of a world model run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm world model (hvp train --model rssm)")
    parser.add_argument("--data", required=True, help="HDF5 dataset written by hvp collect (episodes give the offsets)")
    parser.add_argument("--out", help="output folder (default: RUN/distance, where hvp plan --cost temporal looks)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="network and training size")
    parser.add_argument("--steps", type=int, help="optimizer updates (overrides the preset)")
    parser.add_argument("--max-steps", type=int, help="K_max: predictions saturate here (overrides the preset)")
    parser.add_argument("--held-out", type=float, default=0.1, help="fraction of episodes kept for scoring")
    parser.add_argument("--seed", type=int, help="seed of pairs and weights (overrides the preset)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the MLP is small: 1 is fastest)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_dataset
    from hvp.models.fit_distance import train_distance

    train = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    model = {"max_steps": args.max_steps} if args.max_steps is not None else {}
    _, record = train_distance(args.run, load_dataset(args.data), args.out, preset=args.preset, model_overrides=model,
                               train_overrides=train, held_out=args.held_out, threads=args.threads,
                               progress=not args.no_progress)
    for split, score in record["scores"].items():
        print(f"{split:>9}: Spearman(predicted, true offset) {score['spearman']:.3f}, "
              f"MAE {score['mae_steps']:.2f} steps over {score['pairs']} pairs")
    print(f"trained on {record['frames']} frames of {record['episodes']} episodes in {record['wall_s']:.0f} s")
    return 0
