"""hvp finetune: adapt a trained world model to a small real dataset, then (optionally) re-export it to ONNX."""
from __future__ import annotations

import argparse

HELP = "fine-tune a world model on recorded/imported real data (full or encoder-decoder), early stopping, --export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of the trained model (hvp train)")
    parser.add_argument("--data", required=True, nargs="+",
                        help="real HDF5 dataset(s) (hvp record, hvp import-data), or on-policy data (hvp collect "
                             "--policy mpc)")
    parser.add_argument("--out", required=True, help="new run directory for the fine-tuned model")
    parser.add_argument("--mode", default="full", choices=("full", "encoder-decoder"),
                        help="full: every weight; encoder-decoder: dynamics (GRU, prior) frozen")
    parser.add_argument("--sim-data", nargs="+", help="sim HDF5 dataset(s) mixed into every batch against forgetting")
    parser.add_argument("--sim-fraction", type=float, help="share of each batch from --sim-data (default 0.5 with it)")
    parser.add_argument("--held-out", type=float, help="share of real episodes held out for early stopping (0.2)")
    parser.add_argument("--steps", type=int, help="optimizer updates at most (overrides the preset)")
    parser.add_argument("--eval-every", type=int, help="updates between held-out evaluations")
    parser.add_argument("--patience", type=int, help="evaluations without improvement before stopping")
    parser.add_argument("--lr", type=float, help="learning rate (overrides the preset)")
    parser.add_argument("--kl-balance", type=float,
                        help="prior share of the KL while fine-tuning (default: 0 in encoder-decoder mode, whose prior "
                             "is frozen, so the whole KL keeps the posterior on it; the run's own in full mode)")
    parser.add_argument("--overshooting", type=int,
                        help="latent overshooting while fine-tuning: also train the prior rolled open-loop (as the "
                             "planner rolls it) up to this many steps ahead (default: the run's own, 0 for most)")
    parser.add_argument("--foreground-reference", choices=("window", "batch"),
                        help="rssm: the background of the up-weighted pixels while fine-tuning, the median of each "
                             "window or of the whole batch (default: the run's own; see hvp train)")
    parser.add_argument("--state-loss", type=float,
                        help="state-supervised imagination: weight of RUN/readout's error on the true state read out "
                             "of filtered latents and of prior means rolled open-loop (needs true_state in the data; "
                             "refit the readout afterwards with hvp train-readout). Default 0: off")
    parser.add_argument("--state-horizon", type=int, help="open-loop steps of --state-loss (default 10)")
    parser.add_argument("--state-dims", type=int, help="leading state dimensions --state-loss supervises (default all)")
    parser.add_argument("--keep", choices=("best", "last"),
                        help="weights saved: best held-out loss with early stopping (default), or the last of --steps "
                             "(when the held-out negative ELBO is not what the change is for, e.g. --state-loss)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="fine-tuning sizes")
    parser.add_argument("--seed", type=int, help="seed of the split and window sampling")
    parser.add_argument("--export", action="store_true",
                        help="export OUT/onnx afterwards (with RUN/distance, the base temporal-distance model, if any)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.config import ConfigError
    from hvp.data import DatasetError, load_datasets
    from hvp.models.checkpoint import CheckpointError
    from hvp.models.export import ExportError, export_run
    from hvp.models.finetune import FinetuneConfig, finetune

    if args.sim_fraction and not args.sim_data:
        raise SystemExit("hvp finetune: --sim-fraction needs --sim-data (the sim dataset to mix in)")
    sim_fraction = args.sim_fraction if args.sim_fraction is not None else (0.5 if args.sim_data else 0.0)
    overrides = {name: value for name, value in (
        ("mode", args.mode), ("sim_fraction", sim_fraction), ("held_out", args.held_out), ("steps", args.steps),
        ("eval_every", args.eval_every), ("patience", args.patience), ("learning_rate", args.lr),
        ("kl_balance", args.kl_balance), ("overshooting", args.overshooting),
        ("foreground_reference", args.foreground_reference), ("state_loss", args.state_loss),
        ("state_horizon", args.state_horizon), ("state_dims", args.state_dims), ("keep", args.keep), ("seed", args.seed))
        if value is not None}
    try:
        config = FinetuneConfig.preset(args.preset, **overrides)
        real = load_datasets(args.data)
        sim = load_datasets(args.sim_data) if args.sim_data else None
        summary = finetune(args.run, real, args.out, config, sim=sim, device=args.device, threads=args.threads)
    except (ConfigError, DatasetError, CheckpointError, FileExistsError, ValueError) as err:
        raise SystemExit(f"hvp finetune: {err}") from None
    loss = summary["held_out_loss"]
    print(f"hvp finetune: {summary['steps_run']} updates ({'stopped early' if summary['stopped_early'] else 'all'}), "
          f"kept update {summary['best_step']} ({summary['config']['keep']}); held-out loss {loss['before']:.4g} -> "
          f"{loss['best']:.4g}; saved {args.out}",
          flush=True)
    if summary["state_loss"]:
        print(f"hvp finetune: the readout trained beside it was not saved; refit one: hvp train-readout {args.out} "
              "--data ...", flush=True)
    if args.export:
        distance = Path(args.run) / "distance"
        try:
            manifest = export_run(args.out, Path(args.out) / "onnx",
                                  distance_dir=distance if (distance / "config.json").is_file() else None)
        except (CheckpointError, ExportError) as err:
            raise SystemExit(f"hvp finetune: export: {err}") from None
        print(f"hvp finetune: exported {Path(args.out) / 'onnx'} (model hash {manifest['model_hash'][:16]})", flush=True)
    return 0
