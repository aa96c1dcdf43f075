"""Hierarchical vs flat planning on the same seeded start/goal pairs, plus HVF-style and oracle-subgoal rows.

    python bench/hierarchy.py --task maze-hard=runs/maze-hard --distance runs/hier-maze-hard/distance \
        --subgoals-dir runs/hier-maze-hard/subgoals --episodes 50
    python bench/hierarchy.py --smoke ...        # 2 episodes, 40 steps: checks the wiring only

Rows: flat (MPC toward the goal), hierarchical (generated subgoals, sum cost, replanning, skips),
hvf (generated, max cost, no replanning, no skips), graph (waypoints on a shortest path through
RUN/graph_nodes.safetensors or --graph-data, latent cost), oracle (shortest-path frames; maze only).
Each row reports success with its 95% interval, steps to success and the subgoal (re)plan time.
Writes bench/results/hierarchy.json (or --out).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from results_io import write_results

ROWS = ("flat", "hierarchical", "hvf", "graph", "oracle")


def run_row(row: str, env_name: str, run_dir: str, args: argparse.Namespace, out: Path) -> dict:
    """One row: build its controller, evaluate it on seeds seed .. seed + episodes - 1 -> summary."""
    from hvp.agent import evaluate
    from hvp.hierarchy import OracleSubgoals, build_hierarchical, subgoal_strip
    from hvp.sim import make

    mode = {"flat": "none", "hierarchical": "generated", "hvf": "generated", "graph": "graph",
            "oracle": "oracle"}[row]
    # graph waypoints are near, where the raw latent distance is the accurate one; the others use the learned distance
    controller, decode = build_hierarchical(run_dir, mode, count=args.subgoal_count, hvf=row == "hvf",
                                            cost="latent" if row == "graph" else "temporal", preset=args.preset,
                                            distance_dir=args.distance, subgoals_dir=args.subgoals_dir,
                                            seed=args.seed, threads=1, graph_data=args.graph_data)
    env = make(env_name, **({"max_steps": args.max_steps} if args.max_steps else {}))
    if mode == "oracle":
        controller = OracleSubgoals(controller, env, args.subgoal_count)
    plan_seconds: list[float] = []

    def on_end(index: int):
        def record(start, goal, final, state) -> None:
            plan_seconds.extend(state.get("subgoal_seconds", []))
            if index < args.strips:
                subgoal_strip(start, goal, final, state, decode, out / f"{env_name}_{row}_strip_{index:03d}.png")
        return record

    started = time.perf_counter()
    try:
        summary = evaluate(env, controller, args.episodes, args.seed, progress=not args.no_progress, on_end=on_end)
    finally:
        env.close()
    summary.pop("per_episode")
    return {**summary, "wall_s": time.perf_counter() - started,
            "subgoal_plans": len(plan_seconds),
            "subgoal_plan_s_median": float(np.median(plan_seconds)) if plan_seconds else None,
            "subgoal_plan_s_max": float(np.max(plan_seconds)) if plan_seconds else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", action="append", required=True, help="ENV=RUN, e.g. maze-hard=runs/maze-hard")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--distance", help="temporal-distance folder (default: RUN/distance)")
    parser.add_argument("--subgoals-dir", help="subgoal generator folder (default: RUN/subgoals)")
    parser.add_argument("--subgoal-count", type=int, default=3, help="K: 1, 3 or 7")
    parser.add_argument("--graph-data", help="graph row: HDF5 whose frames are the nodes "
                                             "(default: RUN/graph_nodes.safetensors)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--max-steps", type=int, help="episode length (default: the env's)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"))
    parser.add_argument("--seed", type=int, default=1000, help="episode i: seed + i (default 1000: starts that are "
                        "not dataset episodes, whose seeds are 0, 1, ...)")
    parser.add_argument("--strips", type=int, default=3, help="subgoal strips written per row")
    parser.add_argument("--smoke", action="store_true", help="2 episodes of 40 steps, debug preset")
    parser.add_argument("--out", default="bench/results/hierarchy.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.episodes, args.max_steps, args.preset = 2, 40, "debug"
    rows = [row for row in args.rows.split(",") if row]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"--rows: expected names from {', '.join(ROWS)}, got {', '.join(unknown)}")
    out = Path(args.out).with_suffix("")
    results = {}
    for task in args.task:
        env_name, _, run_dir = task.partition("=")
        if not run_dir:
            parser.error(f"--task: expected ENV=RUN, got {task!r}")
        for row in rows:
            if row == "oracle" and not env_name.startswith("maze"):
                continue  # oracle subgoals are drawn from a maze's free-space shortest path
            summary = run_row(row, env_name, run_dir, args, out)
            results[f"{env_name}/{row}"] = summary
            low, high = summary["success_ci95"]
            plan, plan_max = summary["subgoal_plan_s_median"], summary["subgoal_plan_s_max"]
            print(f"{env_name:>10} {row:>12}: success {summary['successes']}/{summary['episodes']} "
                  f"({low:.0%}-{high:.0%}), act {summary['step_ms_median']:.0f} ms, subgoal plan "
                  f"{'-' if plan is None else f'{plan:.2f} s median / {plan_max:.2f} s max'}",
                  flush=True)
    write_results(args.out, args.seed, {"episodes": args.episodes, "preset": args.preset,
                                        "subgoal_count": args.subgoal_count, "max_steps": args.max_steps,
                                        "graph_data": args.graph_data, "rows": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
