"""hvp export: a trained world model -> ONNX step graphs for a robot computer (numpy + onnxruntime, no torch)."""
from __future__ import annotations

import argparse

HELP = "export a trained RSSM run to ONNX step graphs (encoder, observe/imagine steps, decoder) with a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm model (hvp train --model rssm)")
    parser.add_argument("--out", help="output folder (default: RUN/onnx)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the post-export check")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hvp.models.checkpoint import CheckpointError
    from hvp.models.export import ExportError, export_run

    out = Path(args.out or Path(args.run) / "onnx")
    try:
        manifest = export_run(args.run, out, threads=args.threads)
    except (CheckpointError, ExportError) as err:
        raise SystemExit(f"hvp export: {err}") from None
    for name, graph in manifest["graphs"].items():
        inputs = ", ".join(f"{n}{shape}" for n, _, shape in graph["inputs"])
        outputs = ", ".join(f"{n}{shape}" for n, _, shape in graph["outputs"])
        print(f"{name:<13} {inputs} -> {outputs}  (max |onnx - torch| {graph['max_abs_difference']:.2g})")
    print(f"schema hash {manifest['schema_hash']}\nmodel hash  {manifest['model_hash']}  "
          f"(hvp robot-server --model-hash accepts only this model)\nwritten to {out}")
    return 0
