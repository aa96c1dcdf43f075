"""The checked-in comparison grid, recorded: runs `hvp compare GRID` (finished cells are kept) and writes the table.

    python bench/compare.py                                   # bench/grids/cpu.yaml -> runs/compare-cpu
    python bench/compare.py --grid G.yaml --out runs/compare-G

Writes bench/results/compare.json: every cell's row (success, interval, act() time, prediction error) and the
grid's cost in seconds as the sum of its cells' own wall times (so a resumed grid still reports its full cost).
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from results_io import write_results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="bench/grids/cpu.yaml", help="grid YAML")
    parser.add_argument("--out", default="runs/compare-cpu", help="results folder of hvp compare")
    parser.add_argument("--results", default="bench/results/compare.json")
    args = parser.parse_args()

    from hvp.compare import load_grid, run_grid

    grid = load_grid(args.grid)
    started = time.perf_counter()
    rows = run_grid(grid, args.out)
    with open(Path(args.out) / "prediction.csv", newline="") as file:
        prediction = list(csv.DictReader(file))
    write_results(args.results, grid.seed, {
        "grid": args.grid, "out": args.out, "cells": len(rows), "wall_s_this_call": round(time.perf_counter() - started, 1),
        "cells_wall_s_total": round(sum(float(row["seconds"]) for row in rows), 1),
        "rows": rows, "prediction": prediction, "table": (Path(args.out) / "results.md").read_text()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
