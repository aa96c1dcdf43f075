"""hvp export: a trained world model -> ONNX step graphs for a robot computer (numpy + onnxruntime, no torch)."""
from __future__ import annotations

import argparse

HELP = ("export a trained RSSM run (and its temporal-distance model, subgoal generator, state readout and state "
        "dynamics) to ONNX step graphs with a manifest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm model (hvp train --model rssm)")
    parser.add_argument("--out", help="output folder (default: RUN/onnx)")
    parser.add_argument("--distance", help="temporal-distance model folder to export too (default: RUN/distance if present)")
    parser.add_argument("--subgoals", help="subgoal generator folder to export too (default: RUN/subgoals if present)")
    parser.add_argument("--readout", help="state readout folder to export too (default: RUN/readout if present)")
    parser.add_argument("--state-dynamics", help="state dynamics folder to export too "
                                                 "(default: RUN/state_dynamics if present)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the post-export check")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.models.checkpoint import CheckpointError
    from hvp.models.export import ExportError, export_run

    out = Path(args.out or Path(args.run) / "onnx")
    try:
        manifest = export_run(args.run, out, distance_dir=args.distance, threads=args.threads,
                              subgoals_dir=args.subgoals, readout_dir=args.readout,
                              state_dynamics_dir=args.state_dynamics)
    except (CheckpointError, ExportError) as err:
        raise SystemExit(f"hvp export: {err}") from None
    for kind, model in manifest["models"].items():
        print(f"{kind} (schema hash {model['schema_hash'][:16]})")
        for name, graph in model["graphs"].items():
            inputs = ", ".join(f"{n}{shape}" for n, _, shape in graph["inputs"])
            outputs = ", ".join(f"{n}{shape}" for n, _, shape in graph["outputs"])
            print(f"  {name:<17} {inputs} -> {outputs}  (max |onnx - torch| {graph['max_abs_difference']:.2g})")
    print(f"model hash {manifest['model_hash']}  (hvp robot-server --model-hash accepts only this folder)\n"
          f"written to {out}")
    return 0
