"""hvp compare: a grid of models x planners x tasks x {flat, hierarchical} from one YAML file, resumable."""
from __future__ import annotations

import argparse

HELP = "compare models x planners x tasks x {flat, hierarchical} from a grid YAML: results CSV/Markdown and plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", help="grid YAML (see bench/grids/cpu.yaml and docs/playground.md)")
    parser.add_argument("--out", help="results folder (default: runs/compare-GRIDNAME); "
                                      "a rerun into it skips finished cells")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from hvp.compare import load_grid, run_grid

    started = time.perf_counter()
    grid = load_grid(args.grid)
    out = Path(args.out or f"runs/compare-{Path(args.grid).stem}")
    rows = run_grid(grid, out, progress=not args.no_progress)
    skipped = sum(row["status"] == "skipped" for row in rows)
    print((out / "results.md").read_text())
    print(f"{len(rows)} cells ({skipped} skipped) in {time.perf_counter() - started:.0f} s; written to {out}/ "
          "(results.csv, prediction.csv, results.md, success_vs_prediction_error.png, success_vs_plan_time.png)")
    return 0
