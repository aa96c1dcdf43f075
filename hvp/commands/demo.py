"""hvp demo: the main job, end to end on the default task."""
from __future__ import annotations

import argparse

HELP = "run the default task end to end: collect episodes, write a dataset, a video and start/goal sheets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="maze-hard", help="task (default: maze-hard)")
    parser.add_argument("--episodes", type=int, default=24, help="exploration episodes to collect")
    parser.add_argument("--out", default="runs/demo", help="results folder")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from hvp.data import load_dataset
    from hvp.simulate import simulate
    from hvp.visualize import contact_sheet, side_by_side, write_video

    out = Path(args.out)
    dataset_path = out / "data.hdf5"
    print(f"[1/2] collecting {args.episodes} exploration episodes of {args.env} -> {dataset_path}")
    simulate(args.env, "explore", args.episodes, workers=os.cpu_count() or 1, seed=args.seed, out=dataset_path)
    dataset = load_dataset(dataset_path)
    print("[2/2] writing a video and a sheet of start and goal images")
    first = dataset.episodes[0]
    video = write_video([side_by_side(frame, first["goal_image"]) for frame in first["image"]], out / "episode_0.mp4")
    sheet = contact_sheet([[e["image"][0], e["goal_image"]] for e in dataset.episodes[:8]], out / "start_goal.png")
    summary = {"env": args.env, "episodes": len(dataset), "frames": dataset.frames, "dataset": str(dataset_path),
               "video": str(video), "start_goal_sheet": str(sheet)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
