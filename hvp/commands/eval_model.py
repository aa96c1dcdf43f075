"""hvp eval-model: open-loop prediction quality, object position error and a latent probe on held-out data."""
from __future__ import annotations

import argparse

HELP = "evaluate a trained world model on held-out episodes: PSNR/SSIM/object error per horizon, probe R^2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm model (hvp train --model rssm)")
    parser.add_argument("--data", required=True, help="held-out HDF5 dataset")
    parser.add_argument("--probe-data", help="HDF5 the latent probe is fit on, e.g. the training data (its first "
                        "200 episodes; default: the first half of --data, scored on the other half)")
    parser.add_argument("--baseline", help="run directory of a pixel baseline (hvp train --model pixel)")
    parser.add_argument("--context", type=int, default=5, help="frames observed before predicting (C)")
    parser.add_argument("--horizon", type=int, default=10, help="frames predicted open loop (H)")
    parser.add_argument("--windows", type=int, default=64, help="evaluation windows sampled from the episodes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window sampling")
    parser.add_argument("--out", help="report folder (default: RUN/eval)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: this machine's cores)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.data import load_dataset
    from hvp.models.checkpoint import CheckpointError, load_model
    from hvp.models.evaluate import evaluate, write_report
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(args.run, device=args.device, threads=args.threads)
    baseline = None
    if args.baseline:
        kind, baseline, _ = load_model(args.baseline, runtime.device)
        if kind != "pixel":
            raise CheckpointError(f"--baseline: expected a 'pixel' run, {args.baseline!r} holds {kind!r}")
    summary, frames = evaluate(runtime, load_dataset(args.data), context=args.context, horizon=args.horizon,
                               windows=args.windows, seed=args.seed, baseline=baseline,
                               probe_fit=load_dataset(args.probe_data) if args.probe_data else None)
    out = Path(args.out or Path(args.run) / "eval")
    write_report(out, summary, frames)
    last = args.horizon - 1
    width = max(len(name) for name in ("method", *summary["methods"])) + 2
    print(f"{'method':<{width}}{'PSNR h' + str(args.horizon):>10}{'SSIM':>8}{'pos err px':>12}")
    for name, scores in summary["methods"].items():
        error = scores.get("position_error_px", [float("nan")] * args.horizon)[last]
        print(f"{name:<{width}}{scores['psnr'][last]:>10.2f}{scores['ssim'][last]:>8.3f}{error:>12.2f}")
    probe = summary["probe"]
    print(f"probe R^2 {probe['r2_mean']:.3f} (per dim {[round(r2, 3) for r2 in probe['r2_per_dim']]}; fit on "
          f"{probe['fit_episodes']} episodes of the {probe['fit_on']}, scored on {probe['test_episodes']}); "
          f"report in {out}")
    return 0
