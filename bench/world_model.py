"""Benchmark of issue 3's world-model targets: collect, train (RSSM + pixel baseline), evaluate held out.

    MUJOCO_GL=egl python bench/world_model.py                      # the cpu preset, maze-easy and push
    MUJOCO_GL=egl python bench/world_model.py --preset debug --episodes 6 --held-out 4 --steps 20   # smoke run
    MUJOCO_GL=egl python bench/world_model.py --trained maze-easy=runs/maze-easy,runs/maze-easy-pixel \
        --held-out-data maze-easy=runs/data/maze-easy-heldout.hdf5      # score already trained runs

Targets, at horizon 10 on held-out episodes: object position error <= 1/4 of copy-last-frame's,
PSNR >= copy-last + 3 dB, linear probe R^2 >= 0.97. Writes bench/results/world_model.json
with the command, core count, seed, timings and whether each target was met.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from results_io import write_results

# Per-task RSSM loss settings on top of the preset: the push block rests through most windows and is faint on the
# white floor, so it is weighted against the batch's background; drawn on a learned background, weight 3 keeps
# the pusher and beat weight 10 on all three targets' metrics (docs/world_model.md, "A learned background under
# the decoder"). maze-easy loses 1-2 dB with them, so the preset keeps its own. Push's predictions are also drawn on
# the last observed frame (reference_blend: above copy-last on PSNR, SSIM and block error, seeds 0 and 1), and its
# latent carries 8 image points (keypoints: a linear probe reads the pusher and the block to 0.99, and the readout
# planner plans push 50/50). make push-cpu trains this much (docs/world_model.md).
PUSH_IMAGE_SETTINGS = dict(foreground_reference="batch", foreground_weight=3.0, learned_background=True,
                           reference_blend=True, keypoints=8)
# The bench adds what met push's PSNR target on three seeds and its block target on two (docs/world_model.md,
# "Points on the foreground"): the points found on the 32x32 map, only where the image differs from the empty scene,
# and stepped by their own dynamics beside the robot's observed state, whose free motion is fit before training;
# and points that follow the robot's free step, with the robot's correction from the points' MLP, both trained to
# add nothing on steps without contact (+0.36 dB on seed 0; "Points that follow the robot's free step").
RSSM_SETTINGS = {"push": dict(PUSH_IMAGE_SETTINGS, keypoint_layers=1, points_on_foreground=True, proprio_weight=100.0,
                              observe_robot_state=True, robot_step_fit=True, point_dynamics=True,
                              contact_from_points=True, points_follow_robot=True)}
# Training episodes per task when --episodes is not given. Push's contacts are rare in exploration, and 1300
# episodes (about 30 s to collect on 2 workers) beat 300 on every image score at the same updates, two seeds each
# (docs/world_model.md, "More episodes at the same updates"); the 20 minutes still hold.
EPISODES = {"push": 1300}
DEFAULT_EPISODES = 200
DEBUG_DETER_DIM = 48  # the debug preset's h (16 dims) cannot hold push's 16 point coordinates and 4 robot-state dims


def rssm_settings(env: str, preset: str) -> dict:
    """The RSSM settings `env` adds to `preset` (RSSM_SETTINGS), with an h wide enough for them at the debug one."""
    settings = dict(RSSM_SETTINGS.get(env, {}))
    if preset == "debug" and settings.get("point_dynamics"):
        settings["deter_dim"] = DEBUG_DETER_DIM
    return settings


def train_models(env: str, args: argparse.Namespace, work: Path) -> tuple[dict, object, object, dict]:
    """Collect and train the RSSM and the pixel baseline -> (models, held-out dataset, training dataset (the
    probe is fit on it), collection/training record)."""
    from hvp.data import TrajectoryDataset
    from hvp.models.fit import fit
    from hvp.simulate import simulate

    started = time.perf_counter()
    count = args.episodes if args.episodes is not None else EPISODES.get(env, DEFAULT_EPISODES)
    episodes = simulate(env, "explore", count + args.held_out, seed=args.seed, workers=args.workers, progress=False)
    env_args = {"env_name": env, "env_kwargs": {}}
    train_set = TrajectoryDataset(episodes[:count], env_args)
    held_out = TrajectoryDataset(episodes[count:], env_args)
    record = {"collect_s": time.perf_counter() - started, "train_episodes": count, "train_frames": train_set.frames,
              "training": {}, "rssm_settings": rssm_settings(env, args.preset)}
    overrides = {"seed": args.seed, **({"steps": args.steps} if args.steps else {})}
    models = {}
    for kind in ("rssm", "pixel"):
        started = time.perf_counter()
        models[kind] = fit(train_set, work / f"{env}-{kind}", kind=kind, preset=args.preset,
                           train_overrides=overrides,
                           model_overrides=record["rssm_settings"] if kind == "rssm" else None,
                           threads=args.threads, progress=not args.quiet)
        record["training"][kind] = training_record(work / f"{env}-{kind}")
        record["training"][kind]["total_s"] = time.perf_counter() - started
    return models, held_out, train_set, record


def load_trained(spec: str, held_out_path: str, probe_path: str | None) -> tuple[dict, object, object, dict]:
    """--trained RSSM_RUN,PIXEL_RUN, a held-out HDF5 and the probe's fit HDF5 (or None) -> (models, held-out
    dataset, probe fit dataset or None, their training record)."""
    from hvp.data import load_dataset
    from hvp.models.checkpoint import load_model

    runs = dict(zip(("rssm", "pixel"), spec.split(",")))
    models = {kind: load_model(run, "cpu")[1] for kind, run in runs.items()}
    training = {kind: training_record(Path(run)) for kind, run in runs.items()}
    return (models, load_dataset(held_out_path), load_dataset(probe_path) if probe_path else None,
            {"runs": runs, "held_out_data": held_out_path, "probe_data": probe_path, "training": training})


def training_record(run: Path) -> dict:
    summary_path = run / "train_summary.json"
    if not summary_path.is_file():
        return {}
    summary = json.loads(summary_path.read_text())
    return {**{k: summary.get(k) for k in ("wall_s", "start_step", "steps", "threads", "device")},
            "frames_per_s": summary.get("last_metrics", {}).get("frames_per_s")}


def score(models: dict, held_out, probe_fit, args: argparse.Namespace) -> dict:
    """Open-loop prediction on held-out episodes against issue 3's targets."""
    from hvp.models.evaluate import evaluate
    from hvp.models.runtime import TorchRuntime

    summary, _ = evaluate(TorchRuntime(models["rssm"], device="cpu", threads=args.threads), held_out,
                          context=5, horizon=10, windows=args.windows, seed=args.seed, baseline=models.get("pixel"),
                          probe_fit=probe_fit)
    methods, last = summary["methods"], -1
    rssm_error, copy_error = methods["rssm"]["position_error_px"][last], methods["copy_last"]["position_error_px"][last]
    return {
        "held_out_episodes": len(held_out), "windows": args.windows,
        "h10": {name: {"psnr": m["psnr"][last], "ssim": m["ssim"][last],
                       **{key: m.get(key, [None])[last] for key in ("position_error_px", "position_error_px_moved",
                                                                    "position_error_px_resting")}}
                for name, m in methods.items()},
        "moved_windows": summary["moved_windows"],
        "probe_r2": summary["probe"]["r2_mean"], "probe_r2_per_dim": summary["probe"]["r2_per_dim"],
        "probe": {k: summary["probe"][k] for k in ("fit_on", "fit_episodes", "test_episodes")},
        "targets": {"position_error_at_most_quarter_of_copy_last": rssm_error <= copy_error / 4,
                    "psnr_3db_above_copy_last": methods["rssm"]["psnr"][last] >= methods["copy_last"]["psnr"][last] + 3,
                    "probe_r2_at_least_0.97": summary["probe"]["r2_mean"] >= 0.97},
        "per_horizon": methods,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"))
    parser.add_argument("--envs", nargs="+", default=["maze-easy", "push"])
    parser.add_argument("--episodes", type=int,
                        help=f"training episodes per env (default: {EPISODES}, else {DEFAULT_EPISODES})")
    # 100 episodes and 512 windows: on push, 30 episodes and 128 windows put copy-last at 25.98 dB on one stream and
    # 28.37 on another, and the same model +3.31 / +1.57 dB above it (docs/world_model.md)
    parser.add_argument("--held-out", type=int, default=100, help="held-out episodes per env")
    parser.add_argument("--steps", type=int, help="override the preset's training steps")
    parser.add_argument("--windows", type=int, default=512, help="open-loop evaluation windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="collection processes")
    parser.add_argument("--work", default="bench/results/world_model_runs", help="where the runs are written")
    parser.add_argument("--out", default="bench/results/world_model.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--trained", action="append", default=[], metavar="ENV=RSSM_RUN,PIXEL_RUN",
                        help="score already trained runs instead of collecting and training (with --held-out-data)")
    parser.add_argument("--held-out-data", action="append", default=[], metavar="ENV=HDF5",
                        help="held-out episodes for a --trained env")
    parser.add_argument("--probe-data", action="append", default=[], metavar="ENV=HDF5",
                        help="a --trained env's training episodes, to fit the latent probe on (default: half the "
                             "held-out episodes); without --trained the probe is fit on the training episodes")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")  # a script, not the library: headless rendering
    from hvp.models.runtime import default_threads

    trained = dict(item.split("=", 1) for item in args.trained)
    held_out_data = dict(item.split("=", 1) for item in args.held_out_data)
    probe_data = dict(item.split("=", 1) for item in args.probe_data)
    if set(trained) != set(held_out_data):
        raise SystemExit("--trained and --held-out-data must name the same envs")
    work = Path(args.work)
    if not trained:
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            raise SystemExit(f"--work {work} is not empty; remove it or choose another folder")
    results = {"threads": args.threads or default_threads(), "preset": args.preset, "envs": {}}
    for env in trained or args.envs:
        models, held_out, probe_fit, record = (load_trained(trained[env], held_out_data[env], probe_data.get(env))
                                               if trained else train_models(env, args, work))
        results["envs"][env] = {**record, **score(models, held_out, probe_fit, args)}
        h10 = results["envs"][env]["h10"]
        print(f"{env}: " + ", ".join(f"{name} PSNR {m['psnr']:.2f} pos {m['position_error_px']:.2f}px"
                                     for name, m in h10.items())
              + f"; probe R^2 {results['envs'][env]['probe_r2']:.3f}; targets {results['envs'][env]['targets']}")
    write_results(args.out, args.seed, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
