"""hvp demo: the main job, end to end on the default task."""
from __future__ import annotations

import argparse

HELP = ("run the default task end to end: collect episodes (dataset, video, start/goal sheet), then plan "
        "hierarchically and flat from pixels with the shipped model and compare")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="maze-hard", help="task (default: maze-hard)")
    parser.add_argument("--model", default=None, help="run directory with distance/ and graph_nodes.safetensors "
                                                      "(default: checkpoints/<env>, made by make models)")
    parser.add_argument("--episodes", type=int, default=24, help="exploration episodes to collect")
    parser.add_argument("--plan-episodes", type=int, default=4, help="planning episodes per controller")
    parser.add_argument("--out", default="runs/demo", help="results folder")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from hvp.cli import main as hvp_cli
    from hvp.data import load_dataset
    from hvp.hierarchy import GRAPH_NODES_FILE
    from hvp.simulate import simulate
    from hvp.visualize import contact_sheet, side_by_side, write_video

    out = Path(args.out)
    model = Path(args.model or Path("checkpoints") / args.env)
    for needed in (model / "model.safetensors", model / "distance", model / GRAPH_NODES_FILE):
        if not needed.exists():
            raise SystemExit(f"--model: {needed} is missing; run `make models` or pass a run with a world model, "
                             f"distance/ (hvp train-distance) and {GRAPH_NODES_FILE} (hvp.hierarchy.save_graph_nodes)")
    dataset_path = out / "data.hdf5"
    print(f"[1/3] collecting {args.episodes} exploration episodes of {args.env} -> {dataset_path}")
    simulate(args.env, "explore", args.episodes, workers=os.cpu_count() or 1, seed=args.seed, out=dataset_path)
    dataset = load_dataset(dataset_path)
    first = dataset.episodes[0]
    write_video([side_by_side(frame, first["goal_image"]) for frame in first["image"]], out / "episode_0.mp4")
    contact_sheet([[e["image"][0], e["goal_image"]] for e in dataset.episodes[:8]], out / "start_goal.png")
    summaries = {}
    # hierarchical: waypoints on a shortest path through the shipped dataset frames, the raw latent cost toward
    # each (accurate nearby); flat: the learned temporal distance toward the goal (its best cost, docs/hierarchy.md)
    runs = (("hierarchical", ["--hierarchical", "--subgoals", "graph", "--cost", "latent"]),
            ("flat", ["--cost", "temporal"]))
    for step, (label, extra) in enumerate(runs, start=2):
        print(f"[{step}/3] {label} planning from pixels, {args.plan_episodes} episodes (seed {args.seed})")
        # one torch thread: small batched rollouts gain nothing from two, and lose badly on a busy machine
        hvp_cli(["plan", "--env", args.env, "--model", str(model), "--planner", "cem",
                 "--episodes", str(args.plan_episodes), "--seed", str(args.seed), "--videos", "2", "--threads", "1",
                 "--out", str(out / label), *extra])
        summaries[label] = json.loads((out / label / "summary.json").read_text())
    report = {"env": args.env, "model": str(model), "dataset": str(dataset_path), "episodes": len(dataset),
              **{f"{label}_success_rate": s["success_rate"] for label, s in summaries.items()},
              **{f"{label}_step_ms_median": s["step_ms_median"] for label, s in summaries.items()}}
    (out / "summary.json").write_text(json.dumps(report, indent=2))
    print("\n" + "\n".join(f"{label:>12}: success {s['successes']}/{s['episodes']}, act() {s['step_ms_median']:.0f} ms "
                           f"median per step" for label, s in summaries.items()))
    print(f"strips, videos and summaries under {out}/")
    return 0
