"""Sim-to-real adaptation, one run: success through the bridge on a domain-shifted robot, before and after fine-tuning.

    .venv/bin/python bench/sim2real.py --run runs/maze-easy --env maze-easy --shift mild --eval-episodes 5

Two robot-server processes stand in for the robots: `--shift` (the "real" one) and `none` (the
simulator). On the shifted robot it records episodes with scripted exploration (hvp record),
fine-tunes the run on the first N of them for each N in --record-episodes (hvp finetune), exports
each model (hvp export) and drives both robots with latent MPC over ONNX (hvp deploy). Rows:
in-sim (base model, unshifted robot), zero-shot (base model, shifted robot), fine-tuned with N
episodes (shifted robot). Prediction error: open-loop PSNR on held-out recorded episodes
(recorded with other seeds, never trained on), per model. Target (issue 7): with at most 20
episodes, success >= 90% of in-sim success.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from results_io import write_results

RECORD_SEED, HELD_OUT_SEED = 1000, 2000  # recorded episodes never share seeds with evaluation (seed 0..)


def free_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def start_robot(env: str, shift: str) -> tuple[subprocess.Popen, str]:
    endpoint = free_endpoint()
    process = subprocess.Popen([sys.executable, "-m", "hvp.cli", "robot-server", "--driver", f"sim:{env}",
                                "--shift", shift, "--bind", endpoint], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"robot-server --shift {shift} did not start: {line}")
    return process, endpoint


def success_rate(endpoint: str, model_dir: Path, args: argparse.Namespace) -> dict:
    from hvp.deploy import check_robot, mpc_controller, planning_cost, run_episodes
    from hvp.real.client import RobotClient
    from hvp.real.onnx_runtime import OnnxRuntime

    runtime = OnnxRuntime(model_dir, threads=1)
    controller = mpc_controller(runtime, planning_cost(args.cost, model_dir, 1), args.planner, args.preset,
                                seed=args.seed)
    started = time.perf_counter()
    with RobotClient(endpoint, timeout_s=5.0, ttl_s=args.ttl) as robot:
        check_robot(robot.handshake(runtime.model_hash), runtime)
        episodes = run_episodes(robot, controller, args.eval_episodes, args.seed, max_steps=args.max_steps)
    successes = sum(e.success for e in episodes)
    print(f"  {model_dir}: {successes}/{len(episodes)}", flush=True)
    return {"successes": successes, "episodes": len(episodes), "success_rate": successes / len(episodes),
            "steps": [e.steps for e in episodes], "wall_s": time.perf_counter() - started}


def record_real(endpoint: str, out: Path, episodes: int, seed: int, args: argparse.Namespace):
    from hvp.data import load_dataset
    from hvp.real.client import RobotClient
    from hvp.record import ExplorationController, record

    with RobotClient(endpoint, timeout_s=5.0, ttl_s=args.ttl) as robot:
        info = robot.handshake()
        record(robot, ExplorationController(info.action_dim), out, episodes, seed=seed, max_steps=args.max_steps,
               shift=args.shift)
    return load_dataset(out)


def prediction_psnr(run_dir: Path, held_out, context: int = 5, horizon: int = 10, windows: int = 64) -> float:
    from hvp.models.evaluate import predict_with_runtime
    from hvp.models.metrics import psnr
    from hvp.models.runtime import load_runtime

    batch = held_out.sample_windows(np.random.default_rng(0), windows, context + horizon)
    predicted = predict_with_runtime(load_runtime(str(run_dir), threads=1), batch["image"],
                                     batch["action"].astype(np.float32), context)
    return float(psnr(predicted, batch["image"][:, context:]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/maze-easy", help="trained RSSM run (with RUN/distance for --cost temporal)")
    parser.add_argument("--env", default="maze-easy", help="hvp task the robot servers simulate")
    parser.add_argument("--shift", default="mild", help="domain-shift preset of the 'real' robot (sim/randomization.py)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="evaluation episodes per row")
    parser.add_argument("--record-episodes", type=int, nargs="+", default=[5, 10, 20], help="fine-tuning set sizes")
    parser.add_argument("--held-out-episodes", type=int, default=3, help="recorded episodes for prediction error only")
    parser.add_argument("--mode", default="encoder-decoder", choices=("full", "encoder-decoder"))
    parser.add_argument("--sim-data", help="sim dataset mixed in while fine-tuning (e.g. runs/data/maze-easy.hdf5)")
    parser.add_argument("--sim-fraction", type=float, default=0.5)
    parser.add_argument("--finetune-steps", type=int, default=200, help="fine-tuning updates at most")
    parser.add_argument("--cost", default="latent", choices=("latent", "temporal"))
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="planner sizes")
    parser.add_argument("--max-steps", type=int, default=60, help="control steps per episode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ttl", type=float, default=1.0,
                        help="seconds an action stays valid after its observation (robot max 1.0; a shared CPU plans slowly)")
    parser.add_argument("--work", default="runs/s2r-bench", help="folder for recordings, fine-tuned runs and exports")
    parser.add_argument("--out", default="bench/results/sim2real.json")
    args = parser.parse_args()

    import torch

    from hvp.data import TrajectoryDataset, load_dataset
    from hvp.models.export import export_run
    from hvp.models.finetune import FinetuneConfig, finetune

    torch.set_num_threads(1)
    work, run = Path(args.work), Path(args.run)
    distance = run / "distance" if (run / "distance" / "config.json").is_file() else None
    robots = [start_robot(args.env, args.shift), start_robot(args.env, "none")]
    (real_endpoint, sim_endpoint) = (endpoint for _, endpoint in robots)
    try:
        started = time.perf_counter()
        # record on the shifted robot: fine-tuning episodes and held-out episodes (other seeds)
        recorded = record_real(real_endpoint, work / "real.hdf5", max(args.record_episodes), RECORD_SEED, args)
        held_out = record_real(real_endpoint, work / "held_out.hdf5", args.held_out_episodes, HELD_OUT_SEED, args)
        record_s = time.perf_counter() - started
        # models: the base run, then one fine-tuned run per dataset size
        models = {"base": run}
        finetune_summaries = {}
        sim = load_dataset(args.sim_data) if args.sim_data else None
        for count in args.record_episodes:
            out = work / f"ft-{args.mode}-{count}"
            if not (out / "model.safetensors").is_file():
                config = FinetuneConfig(mode=args.mode, steps=args.finetune_steps, seed=args.seed,
                                        sim_fraction=args.sim_fraction if sim is not None else 0.0)
                subset = TrajectoryDataset(recorded.episodes[:count], recorded.env_args)
                finetune_summaries[count] = finetune(run, subset, out, config, sim=sim, threads=1)
            models[f"finetuned_{count}"] = out
        for name, run_dir in models.items():
            export_run(run_dir, work / "onnx" / name, distance_dir=distance)
        # success through the bridge, and open-loop prediction error on held-out real episodes
        rows = {"in_sim": success_rate(sim_endpoint, work / "onnx" / "base", args),
                "zero_shot": success_rate(real_endpoint, work / "onnx" / "base", args)}
        for count in args.record_episodes:
            rows[f"finetuned_{count}"] = success_rate(real_endpoint, work / "onnx" / f"finetuned_{count}", args)
        psnr = {name: prediction_psnr(run_dir, held_out) for name, run_dir in models.items()}
    finally:
        for process, _ in robots:
            process.terminate()
            process.wait(timeout=10)
    in_sim = rows["in_sim"]["success_rate"]
    best = max(rows[f"finetuned_{c}"]["success_rate"] for c in args.record_episodes if c <= 20)
    record = {
        "env": args.env, "shift": args.shift, "run": args.run, "mode": args.mode, "planner": args.planner,
        "cost": args.cost, "preset": args.preset, "eval_episodes": args.eval_episodes, "max_steps": args.max_steps,
        "sim_data": args.sim_data, "success": rows, "prediction_psnr_db_held_out_real": psnr,
        "finetune": {str(c): {k: s[k] for k in ("steps_run", "best_step", "held_out_loss", "stopped_early")}
                     for c, s in finetune_summaries.items()},
        "record_s": record_s, "wall_s": time.perf_counter() - started,
        "target": {"finetuned_at_most_20_over_in_sim": None if in_sim == 0 else best / in_sim,
                   "met": bool(in_sim > 0 and best >= 0.9 * in_sim)},
    }
    write_results(args.out, args.seed, record)
    for name, row in rows.items():
        print(f"{name:>14}: {row['successes']}/{row['episodes']}  psnr {psnr.get(name.replace('zero_shot', 'base'), float('nan')):.2f}")


if __name__ == "__main__":
    main()
