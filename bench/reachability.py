"""Reachability before/after refinement on the low-level controller's own outcomes (issue 5).

    python bench/reachability.py --run checkpoints/maze-hard --data runs/data/maze-hard.hdf5 \\
        --out runs/maze-hard-reach400 --attempts 400 --budget 30 --max-offset 80

Runs `hvp refine-reachability` (its recorded outcomes in OUT/outcomes.hdf5 are reused when present)
and writes bench/results/reachability.json: the scores of the distance before and after refinement
on held-out attempts, and how often the controller arrived by how far ahead the target was.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from results_io import write_results

OFFSET_BUCKETS = ((1, 10), (10, 20), (20, 40), (40, 81))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="checkpoints/maze-hard")
    parser.add_argument("--data", default="runs/data/maze-hard.hdf5")
    parser.add_argument("--out", default="runs/maze-hard-reach400")
    parser.add_argument("--attempts", type=int, default=400)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--max-offset", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default="bench/results/reachability.json")
    args = parser.parse_args()

    from hvp.cli import main as hvp_cli
    from hvp.reachability import load_outcomes

    hvp_cli(["refine-reachability", args.run, "--data", args.data, "--out", args.out, "--attempts", str(args.attempts),
             "--budget", str(args.budget), "--max-offset", str(args.max_offset), "--seed", str(args.seed)])
    report = json.loads((Path(args.out) / "report.json").read_text())
    outcomes, attrs = load_outcomes(Path(args.out) / "outcomes.hdf5")
    by_offset = []
    for low, high in OFFSET_BUCKETS:
        rows = (outcomes["offset"] >= low) & (outcomes["offset"] < high)
        arrived = rows & outcomes["reached"]
        by_offset.append({"offset": [low, high - 1], "attempts": int(rows.sum()),
                          "reached": int(arrived.sum()),
                          "steps_median_reached": float(np.median(outcomes["steps"][arrived])) if arrived.any()
                          else None})
    settings = {key: value.item() if hasattr(value, "item") else value for key, value in attrs.items()}  # numpy -> JSON
    write_results(args.results, args.seed, {"run": args.run, "data": args.data, "outcomes": settings,
                                            "by_offset": by_offset, **report})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
