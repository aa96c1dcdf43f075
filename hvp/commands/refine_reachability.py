"""hvp refine-reachability: aim the low-level controller at dataset frames, then refine the distance on the outcomes."""
from __future__ import annotations

import argparse

HELP = ("record where the low-level controller really arrives when aimed at dataset frames, and refine the "
        "temporal distance into a reachability model on those outcomes (before/after scores)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory of an rssm world model with distance/ (hvp train-distance)")
    parser.add_argument("--data", required=True, help="HDF5 dataset written by hvp collect (episodes are replayed "
                                                      "by their seeds and actions; targets are their frames)")
    parser.add_argument("--out", help="output folder (default: RUN/reachability; hvp plan --distance OUT uses it)")
    parser.add_argument("--distance", help="temporal-distance folder to refine (default: RUN/distance)")
    parser.add_argument("--attempts", type=int, default=200, help="controller attempts to record")
    parser.add_argument("--budget", type=int, default=25, help="control steps per attempt")
    parser.add_argument("--max-offset", type=int, default=40, help="targets are 1..this many dataset steps ahead")
    parser.add_argument("--radius", type=float, default=0.15, help="arrival: the agent this close to the target's "
                                                                   "true position (grading only)")
    parser.add_argument("--graded-dims", type=int, default=2, help="leading true_state entries graded: 2 the agent "
                        "(ball, pusher), 4 the pusher and the block (push tasks)")
    parser.add_argument("--planner", default="cem", help="optimizer of the low-level controller")
    parser.add_argument("--held-out", type=float, default=0.25, help="fraction of attempts kept for scoring")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="refinement size")
    parser.add_argument("--steps", type=int, help="refinement updates (overrides the preset)")
    parser.add_argument("--recollect", action="store_true", help="record new outcomes even if OUT/outcomes.hdf5 exists")
    parser.add_argument("--seed", type=int, default=0, help="seed of the attempts and the controller")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hvp.agent import build_controller
    from hvp.cli_args import given
    from hvp.data import load_dataset
    from hvp.reachability import collect_outcomes, load_outcomes, refine_run, save_outcomes
    from hvp.sim import make

    out = Path(args.out or Path(args.run) / "reachability")
    dataset = load_dataset(args.data)
    outcomes_file = out / "outcomes.hdf5"
    if outcomes_file.exists() and not args.recollect:
        outcomes, attrs = load_outcomes(outcomes_file)
        budget = int(attrs["budget"])
        print(f"reusing {len(outcomes['steps'])} attempts from {outcomes_file} (budget {budget}; --recollect for new)")
    else:
        budget = args.budget
        controller, _ = build_controller(args.run, args.planner, "temporal", seed=args.seed, threads=args.threads,
                                         distance_dir=args.distance)
        longest = max(len(e["image"]) for e in dataset.episodes)
        env = make(dataset.env_args["env_name"], **{**dataset.env_args.get("env_kwargs", {}),
                                                    "max_steps": longest + budget})
        try:
            outcomes = collect_outcomes(env, controller, dataset, args.attempts, budget, args.max_offset, args.radius,
                                        args.seed, progress=not args.no_progress, graded_dims=args.graded_dims)
        finally:
            env.close()
        save_outcomes(outcomes_file, outcomes, {"env": dataset.env_args["env_name"], "budget": budget,
                                                "radius": args.radius, "graded_dims": args.graded_dims,
                                                "max_offset": args.max_offset,
                                                "planner": args.planner, "seed": args.seed})
    record = refine_run(args.run, dataset, outcomes, budget, out, distance_dir=args.distance, held_out=args.held_out,
                        preset=args.preset, overrides=given(args, "steps"), threads=args.threads,
                        progress=not args.no_progress)
    (out / "report.json").write_text(json.dumps(record, indent=2))
    print(f"{record['attempts']} attempts, {int(outcomes['reached'].sum())} reached within {budget} steps")
    for split in ("train", "held_out"):
        for when in ("before", "after"):
            score = record[when][split]
            print(f"{split:>9} {when:>6}: reach accuracy {score['reach_accuracy']:.2f}, AUC {score['reach_auc']:.2f}, "
                  f"Spearman {score['spearman']:.2f}, "
                  f"MAE (reached) {score['mae_reached_steps']:.1f} steps, median prediction reached "
                  f"{score['predicted_median_reached']:.1f} / unreached {score['predicted_median_unreached']:.1f}")
    print(f"reachability model -> {out} (hvp plan --distance {out}); report {out / 'report.json'}")
    return 0
