"""hvp train-readout: learn to read the task's true state out of a world model's latents (the readout cost)."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_latent_model_arguments, data_summary, fit_options, given

HELP = "train the state readout (latent -> the task's true state) of a world model run, for --cost readout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_latent_model_arguments(parser, out_dir="readout", used_by="hvp plan --cost readout", samples="latents",
                               data_note="with true_state per frame, as hvp collect records it")


def run(args: argparse.Namespace) -> int:
    from hvp.data import load_datasets
    from hvp.models.readout import train_readout

    _, record = train_readout(args.run, load_datasets(args.data), args.out, train_overrides=given(args, "steps", "seed"),
                              **fit_options(args))
    for split, errors in record["mean_abs_error"].items():
        print(f"{split:>9}: mean absolute error per state dimension " +
              ", ".join(f"{kind} {values}" for kind, values in errors.items()))
    print(f"task: {record['task']}; " + data_summary(record))
    return 0
