"""hvp train-state-dynamics: learn how the task's true state moves under actions (plans imagined in that state)."""
from __future__ import annotations

import argparse

from hvp.cli_args import add_latent_model_arguments, data_summary, fit_options, given

HELP = ("train the state dynamics (state, recent actions, action -> next state) beside a world model run, "
        "for hvp plan --imagine state")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_latent_model_arguments(parser, out_dir="state_dynamics", used_by="hvp plan --imagine state",
                               samples="transitions", data_note="with true_state per frame, as hvp collect records it")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.agent import STATE_DYNAMICS_DIR
    from hvp.data import load_datasets
    from hvp.models.state_dynamics import train_state_dynamics

    out = args.out or Path(args.run) / STATE_DYNAMICS_DIR
    if not Path(args.run).is_dir():
        raise SystemExit(f"hvp train-state-dynamics: run directory {args.run!r} does not exist")
    _, record = train_state_dynamics(load_datasets(args.data), out, train_overrides=given(args, "steps", "seed"),
                                     **fit_options(args))
    for split, errors in record["mean_abs_error"].items():
        print(f"{split:>9}: mean absolute error per state dimension " +
              ", ".join(f"{kind} {values}" for kind, values in errors.items()))
    print(f"task: {record['task']}; written to {out}; " + data_summary(record))
    return 0
