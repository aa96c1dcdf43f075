"""Command-line arguments shared by the verbs that train a small model in a world model's latent space
(hvp train-distance, hvp train-subgoals). Kept outside hvp/commands/, where every module is a verb."""
from __future__ import annotations

import argparse
from typing import Any


def add_latent_model_arguments(parser: argparse.ArgumentParser, *, out_dir: str, used_by: str, samples: str,
                               data_note: str) -> None:
    """RUN, --data, --out (default RUN/`out_dir`, where `used_by` looks), --preset, --steps, --held-out,
    --seed (of the `samples` drawn and the weights), --threads, --no-progress; `data_note` says what the
    dataset's episodes give. The verb adds its own model or sampling flags after these."""
    parser.add_argument("run", help="run directory of an rssm world model (hvp train --model rssm)")
    parser.add_argument("--data", required=True, nargs="+",
                        help=f"HDF5 dataset(s) of one task written by hvp collect ({data_note})")
    parser.add_argument("--out", help=f"output folder (default: RUN/{out_dir}, where {used_by} looks)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="network and training size")
    parser.add_argument("--steps", type=int, help="optimizer updates (overrides the preset)")
    parser.add_argument("--held-out", type=float, default=0.1, help="fraction of episodes kept for scoring")
    parser.add_argument("--seed", type=int, help=f"seed of {samples} and weights (overrides the preset)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the MLP is small: 1 is fastest)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """{name: value} of the flags among `names` that were passed (not None): preset overrides."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments that train_distance and train_subgoals take from the shared flags."""
    return {"preset": args.preset, "held_out": args.held_out, "threads": args.threads,
            "progress": not args.no_progress}


def data_summary(record: dict[str, Any]) -> str:
    """One line on what a train_distance / train_subgoals record was trained on and how long it took."""
    return f"trained on {record['frames']} frames of {record['episodes']} episodes in {record['wall_s']:.0f} s"


def add_imagination_arguments(parser: argparse.ArgumentParser, *, state_needs: str) -> None:
    """--imagine latent|state and --proprio, shared by hvp plan and hvp deploy; `state_needs` says where the state
    readout and state dynamics come from for that verb."""
    parser.add_argument("--imagine", default="latent", choices=("latent", "state"),
                        help="roll plans out with the world model's prior (latent) or, with --cost readout, in the "
                             f"task's state read out of each belief (state: needs {state_needs})")
    parser.add_argument("--proprio", action="store_true",
                        help="with --imagine state: the robot's proprioception (obs['state']) gives the state dims it "
                             "measures (push: the pusher's position) instead of the readout; a world model trained "
                             "with --observe-robot-state needs it (with --cost readout) to take obs['state'] in")
