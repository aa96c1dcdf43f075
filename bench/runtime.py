"""One latent-MPC plan step and imagine() alone: torch eager, torch traced (TorchRuntime) and onnxruntime.

    python bench/runtime.py                              # cpu-preset RSSM, random weights
    python bench/runtime.py --run runs/maze-easy         # a trained run (exported to a temp folder)
    python bench/runtime.py --threads 2 1                # each thread count in turn

Every runtime gets the same model, the same images and the same planner seed; calls are
interleaved (torch, torch_traced, onnx, torch, ...) so background load hits all alike. "torch" is
eager PyTorch (TorchRuntime(traced=False)); "torch_traced" is TorchRuntime's default, observe() and
imagine() through traced graphs optimized for inference. A plan step is
LatentMPC.act() with a replan every step: observe one image, CEM N=128 x I=3 over H=10
(3 imagine() calls of 128 sequences). Also timed:
imagine() alone at N=128 and N=1 (the N=1 time is per-op overhead, not arithmetic), and
onnxruntime's per-step imagine against one graph unrolled over a fixed H=10.
Targets: onnxruntime >= 1.5x faster than torch eager on 2 cores (issue 6); a plan step <= 25 ms
median (issue 4). Writes bench/results/runtime.json.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from results_io import write_results

POPULATION, ITERATIONS, HORIZON = 128, 3, 10


def timings_ms(functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Interleaved wall times of each function -> {name: {median_ms, p95_ms}}."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for index in range(warmup + repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            if index >= warmup:
                samples[name].append(1e3 * (time.perf_counter() - started))
    return {name: {"median_ms": round(float(np.median(v)), 3), "p95_ms": round(float(np.percentile(v, 95)), 3)}
            for name, v in samples.items()}


def random_run(preset: str, work: Path, seed: int) -> str:
    """A run directory with a random-weight RSSM of `preset` size for maze-like tasks (64x64 images, 2 actions)."""
    import torch

    from hvp.models.checkpoint import save_model
    from hvp.models.config import RSSMConfig, TrainConfig
    from hvp.models.rssm import RSSM

    torch.manual_seed(seed)
    save_model(work / "run", "rssm", RSSM(RSSMConfig.preset(preset, image_size=(64, 64), action_dim=2)),
               TrainConfig.preset("debug"), {})
    return str(work / "run")


def unrolled_rollout(run: str, work: Path, threads: int):
    """An onnxruntime session of RSSM.rollout unrolled over a fixed H (the alternative to one step graph)."""
    import onnxruntime
    import torch

    from hvp.models.checkpoint import load_model
    from hvp.models.export import EXAMPLE_BATCH, GraphSpec, StepFunction, export_graph

    _, model, _ = load_model(run)
    config = model.config
    inputs = (torch.zeros(EXAMPLE_BATCH, config.deter_dim), torch.zeros(EXAMPLE_BATCH, config.stoch_dim),
              torch.zeros(EXAMPLE_BATCH, HORIZON, config.action_dim))
    spec = GraphSpec("rollout", StepFunction(model, model.rollout), inputs, ("deter", "stoch", "actions"), ("latents",))
    export_graph(spec, work / "rollout.onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(work / "rollout.onnx"), options, providers=["CPUExecutionProvider"])


def bench_threads(run: str, onnx_dir: Path, work: Path, threads: int, steps: int, seed: int) -> dict:
    from hvp.deploy import mpc_controller
    from hvp.planners.costs import LatentDistance
    from hvp.models.runtime import load_runtime
    from hvp.real.onnx_runtime import OnnxRuntime

    runtimes = {"torch": load_runtime(run, device="cpu", threads=threads, traced=False),
                "torch_traced": load_runtime(run, device="cpu", threads=threads),
                "onnx": OnnxRuntime(onnx_dir, threads=threads)}
    rng = np.random.default_rng(seed)
    shape = runtimes["onnx"].image_shape
    goal, image = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
    controllers = {name: mpc_controller(runtime, LatentDistance("all"), "cem", "cpu", HORIZON, seed)
                   for name, runtime in runtimes.items()}
    states = {name: controller.reset(goal) for name, controller in controllers.items()}

    def plan_step(name: str) -> Callable[[], None]:
        def step() -> None:  # replan from the same belief each time: every call is a full plan step
            controllers[name].act({**states[name], "stale": True}, {"image": image})
        return step

    plan = timings_ms({name: plan_step(name) for name in runtimes}, steps)
    first = {name: controllers[name].act(states[name], {"image": image})[1] for name in runtimes}
    belief = runtimes["onnx"].initial_state(1)
    actions = {count: rng.uniform(-1, 1, (count, HORIZON, 2)).astype(np.float32) for count in (POPULATION, 1)}
    imagine = timings_ms({f"{name}_n{count}": (lambda r=runtime, a=batch: r.imagine(belief, a))
                          for count, batch in actions.items() for name, runtime in runtimes.items()}, 5 * steps)
    session = unrolled_rollout(run, work, threads)
    feeds = {**runtimes["onnx"].initial_state(POPULATION), "actions": actions[POPULATION]}
    unrolled = timings_ms({"onnx_step_graph": lambda: runtimes["onnx"].imagine(belief, actions[POPULATION]),
                           "onnx_unrolled_h10": lambda: session.run(None, feeds)}, 5 * steps)
    ratio = plan["torch"]["median_ms"] / plan["onnx"]["median_ms"]
    print(f"threads {threads}: plan step " + " | ".join(
        f"{name} {plan[name]['median_ms']:.1f} ms (p95 {plan[name]['p95_ms']:.1f})" for name in runtimes)
        + f" | onnx {ratio:.2f}x faster than torch eager")
    print(f"  imagine N={POPULATION} H={HORIZON}: " + ", ".join(
        f"{name} {imagine[f'{name}_n{POPULATION}']['median_ms']:.2f} ms" for name in runtimes) + "; N=1: " + ", ".join(
        f"{name} {imagine[f'{name}_n1']['median_ms']:.2f} ms" for name in runtimes)
        + f"; onnx unrolled H=10 graph {unrolled['onnx_unrolled_h10']['median_ms']:.2f} ms vs step graph "
        f"{unrolled['onnx_step_graph']['median_ms']:.2f} ms")
    return {"threads": threads, "plan_step": plan, "plan_speedup_onnx_over_torch": round(ratio, 2),
            "plan_speedup_traced_over_torch": round(plan["torch"]["median_ms"] / plan["torch_traced"]["median_ms"], 2),
            "imagine": imagine, "imagine_onnx_graphs": unrolled,
            "first_action_difference": {name: float(np.max(np.abs(first["torch"] - first[name])))
                                        for name in runtimes if name != "torch"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained rssm run directory (default: random weights of --preset)")
    parser.add_argument("--preset", default="cpu", choices=("debug", "cpu", "gpu"), help="model size without --run")
    parser.add_argument("--threads", type=int, nargs="+", default=[len(os.sched_getaffinity(0))],
                        help="thread counts to compare (each runtime gets the same)")
    parser.add_argument("--steps", type=int, default=30, help="timed plan steps per runtime")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/runtime.json")
    args = parser.parse_args()

    from hvp.models.export import export_run

    with tempfile.TemporaryDirectory(prefix="hvp-bench-runtime-") as folder:
        work = Path(folder)
        run = args.run or random_run(args.preset, work, args.seed)
        started = time.perf_counter()
        manifest = export_run(run, work / "onnx")
        export_seconds = time.perf_counter() - started
        results = [bench_threads(run, work / "onnx", work, threads, args.steps, args.seed) for threads in args.threads]
    write_results(args.out, args.seed, {
        "model": args.run or f"random weights, RSSM preset {args.preset}", "model_config": manifest["models"]["rssm"]["config"],
        "planner": {"optimizer": "cem", "population": POPULATION, "iterations": ITERATIONS, "horizon": HORIZON},
        "export_seconds": round(export_seconds, 1), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
