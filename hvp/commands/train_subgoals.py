"""hvp train-subgoals: learn the subgoal generator (midpoint CVAE) in a world model's latent space."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_latent_model_arguments, data_summary, fit_options, given

HELP = "train the subgoal generator (conditional VAE proposing midpoint latents) of a world model run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_latent_model_arguments(parser, out_dir="subgoals", used_by="hvp plan --hierarchical", samples="triples",
                               data_note="triples t, t+k, t+2k")
    parser.add_argument("--max-offset", type=int, help="largest k of a triple (overrides the preset)")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_datasets
    from hvp.models.subgoal import train_subgoals

    _, record = train_subgoals(args.run, load_datasets(args.data), args.out,
                               train_overrides=given(args, "steps", "seed", "max_offset"), **fit_options(args))
    for split, score in record["scores"].items():
        print(f"{split:>9}: midpoint RMSE (normalized latent) best of 8 codes {score['best_of_codes']:.3f}, "
              f"straight average {score['average']:.3f}, random frame {score['random_frame']:.3f}")
    print(data_summary(record))
    return 0
