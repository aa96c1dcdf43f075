"""hvp train-distance: learn the temporal-distance planning cost of a trained world model."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_latent_model_arguments, data_summary, fit_options, given

HELP = "train the temporal-distance model (control steps between two latents) of a world model run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_latent_model_arguments(parser, out_dir="distance", used_by="hvp plan --cost temporal", samples="pairs",
                               data_note="episodes give the offsets")
    parser.add_argument("--max-steps", type=int, help="K_max: predictions saturate here (overrides the preset)")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_datasets
    from hvp.models.fit_distance import train_distance

    _, record = train_distance(args.run, load_datasets(args.data), args.out, model_overrides=given(args, "max_steps"),
                               train_overrides=given(args, "steps", "seed"), **fit_options(args))
    for split, score in record["scores"].items():
        print(f"{split:>9}: Spearman(predicted, true offset) {score['spearman']:.3f}, "
              f"MAE {score['mae_steps']:.2f} steps over {score['pairs']} pairs")
    print(data_summary(record))
    return 0
