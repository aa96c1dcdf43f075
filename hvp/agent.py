"""Agent wiring: a controller from a run directory, and evaluation episodes of any controller in an env.

    controller, decode = build_controller("runs/maze-easy", planner="cem", cost="temporal")
    summary = evaluate(env, controller, episodes=50, seed=0, out="runs/maze-easy/plan_flat", decode=decode)

Controllers see observations only ({"image", "state"}); the evaluation loop alone reads
info["success"] and info["distance"] to grade them.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from hvp.contracts import Controller

COSTS = ("latent", "temporal", "pixel", "readout")
IMAGINATIONS = ("latent", "state")  # plans rolled out by the world model's prior, or by a model of the task's state
RANDOM_ACTIONS = "random-actions"
DISTANCE_DIR = "distance"  # where hvp train-distance puts the temporal-distance model inside a run
READOUT_DIR = "readout"  # where hvp train-readout puts the state readout inside a run
STATE_DYNAMICS_DIR = "state_dynamics"  # where hvp train-state-dynamics puts its model inside a run
Decode = Callable[[np.ndarray], np.ndarray]  # latents float32 [K, D] -> images uint8 [K, h, w, 3]


def planner_names() -> list[str]:
    from hvp.planners import OPTIMIZERS

    return [*OPTIMIZERS.names(), RANDOM_ACTIONS]


class RandomActions:
    """Baseline Controller: uniform random actions in [-1, 1], blind to images and goal."""

    def __init__(self, action_dim: int, seed: int = 0) -> None:
        self.action_dim, self.seed = action_dim, seed

    def reset(self, goal_image: np.ndarray, seed: int | None = None) -> dict[str, Any]:
        return {"rng": np.random.default_rng(self.seed if seed is None else seed)}

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        return state, state["rng"].uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


def build_cost(name: str, runtime: Any, distance_dir: str | Path | None = None,
               readout_dir: str | Path | None = None) -> Any:
    """A planning cost term by name: "latent" (squared latent distance), "temporal" (learned steps, the model in
    `distance_dir` made by hvp train-distance), "pixel", "readout" (the task's state_cost on states read out of
    the latents by the model in `readout_dir`, made by hvp train-readout)."""
    from hvp.planners.costs import LatentDistance, PixelMSE, StateCost, TemporalDistance

    # every step counts for latent, temporal and readout costs: a last-step-only cost leaves the first actions
    # free (docs/planners.md); pixel decodes each weighted step, so it scores the last one only to stay affordable
    if name == "latent":
        return LatentDistance(weighting="all")
    if name == "pixel":
        return PixelMSE(runtime)
    device = getattr(runtime, "device", None)
    if name == "temporal":
        from hvp.models.temporal_distance import load_distance

        if distance_dir is None:
            raise ValueError("distance_dir: cost 'temporal' needs the folder of a temporal-distance model "
                             "(hvp train-distance); pass it, or use cost 'latent'")
        return TemporalDistance(load_distance(distance_dir, device=device), weighting="all")
    if name == "readout":
        from hvp.models.readout import load_readout
        from hvp.sim import task_state_cost

        if readout_dir is None:
            raise ValueError("readout_dir: cost 'readout' needs the folder of a state readout (hvp train-readout); "
                             "pass it, or use cost 'temporal'")
        readout = load_readout(readout_dir, device=device)
        return StateCost(readout, task_state_cost(readout.task), weighting="all")
    raise ValueError(f"cost: expected one of {', '.join(COSTS)}, got {name!r}")


def build_controller(run_dir: str | Path, planner: str = "cem", cost: str = "temporal", *, preset: str = "cpu",
                     horizon: int | None = None, seed: int = 0, device: str | None = None,
                     threads: int | None = None, distance_dir: str | Path | None = None,
                     optimizer_overrides: Mapping[str, Any] | None = None,
                     gradient_steps: int = 0, readout_dir: str | Path | None = None, imagine: str = "latent",
                     dynamics_dir: str | Path | None = None, proprio: bool = False) -> tuple[Controller, Decode | None]:
    """-> (controller, decode of its imagined latents for videos, or None) for the world model in `run_dir`.

    `planner` is an optimizer name (hvp.planners.OPTIMIZERS) or "random-actions". imagine "state" rolls plans out
    in the task's state (planners/state_space.py): the readout in `readout_dir` reads it out of every belief, the
    state dynamics in `dynamics_dir` (default RUN/state_dynamics, hvp train-state-dynamics) predicts it; the cost
    is then the task's state cost, so `cost` must be "readout"; with `proprio`, the state dims the robot's
    proprioception measures (obs["state"]) replace the readout's estimates. A world model trained with
    observe_robot_state takes obs["state"] into its belief too, so it needs `proprio` and cost "readout".
    """
    names = planner_names()
    if planner not in names:
        raise ValueError(f"planner: expected one of {', '.join(names)}, got {planner!r}")
    if cost not in COSTS:
        raise ValueError(f"cost: expected one of {', '.join(COSTS)}, got {cost!r}")
    if imagine not in IMAGINATIONS:
        raise ValueError(f"imagine: expected one of {', '.join(IMAGINATIONS)}, got {imagine!r}")
    if imagine == "state" and cost != "readout":
        raise ValueError(f"cost: imagine 'state' plans on the task's state cost, so it needs cost 'readout' "
                         f"(got {cost!r})")
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(str(run_dir), device=device, threads=threads)
    if proprio and imagine != "state" and not runtime.observes_robot_state:
        raise ValueError("proprio: proprioception enters the read-out state, so it needs imagine 'state' (or a world "
                         "model trained with --observe-robot-state)")
    if runtime.observes_robot_state and cost != "readout" and planner != RANDOM_ACTIONS:
        raise ValueError(f"cost: this world model observes the robot's state, which a goal image alone does not give "
                         f"its encoding; plan it on the task's state with cost 'readout' (got {cost!r})")
    if planner == RANDOM_ACTIONS:
        return RandomActions(runtime.action_dim, seed), None
    from hvp.deploy import mpc_controller

    readout_dir = readout_dir or Path(run_dir) / READOUT_DIR
    if imagine == "state":
        from hvp.deploy import state_space_planning
        from hvp.models.readout import load_readout
        from hvp.models.state_dynamics import load_state_dynamics

        device = getattr(runtime, "device", None)
        runtime, cost_term = state_space_planning(
            runtime, load_readout(readout_dir, device=device),
            load_state_dynamics(dynamics_dir or Path(run_dir) / STATE_DYNAMICS_DIR, device=device), proprio)
        return mpc_controller(runtime, cost_term, planner, preset, horizon, seed, optimizer_overrides,
                              proprio=proprio), None
    cost_term = build_cost(cost, runtime, distance_dir or Path(run_dir) / DISTANCE_DIR, readout_dir)
    return (mpc_controller(runtime, cost_term, planner, preset, horizon, seed, optimizer_overrides, gradient_steps,
                           proprio=proprio), runtime.decode)


def state_frames(env: gym.Env, state_dim: int) -> Decode | None:
    """Decode for videos of plans imagined in the task's state: each state drawn by the simulator itself (posed in a
    scratch copy, the episode untouched), where the state is the scene's joint positions; else None."""
    scene = env.unwrapped
    if not hasattr(scene, "render_state") or getattr(getattr(scene, "model", None), "nq", None) != state_dim:
        return None
    return lambda states: np.stack([scene.render_state(state) for state in states])


# -- evaluation ---------------------------------------------------------------------------------
def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% (z = 1.96) Wilson score interval of a success rate; (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass(frozen=True)
class EpisodeOutcome:
    seed: int
    success: bool
    steps: int  # control steps taken
    steps_to_success: int | None  # first step at which info["success"] held, None if never
    final_distance: float  # task-space distance to the goal at the end (evaluation only)
    act_seconds: tuple[float, ...]  # wall time of each controller.act() call (filter + plan)


def reset_controller(controller: Controller, goal_image: np.ndarray, seed: int) -> dict[str, Any]:
    # Controller.reset(goal_image) is the contract; controllers that also take a seed get the episode's own
    if "seed" in inspect.signature(controller.reset).parameters:
        return controller.reset(goal_image, seed=seed)
    return controller.reset(goal_image)


def video_panel(obs_image: np.ndarray, goal_image: np.ndarray, imagined: np.ndarray | None, age: int,
                decode: Decode | None, scale: int = 3) -> np.ndarray:
    """One video frame uint8 [scale*h, scale*w*4, 3]: reality | imagined next frame | imagined plan end | goal.

    `imagined` float32 [H, D] are the latents of the plan the controller holds, `age` the actions it has executed
    from it; the imagined frames are blank without them (or without `decode`).
    """
    blank = np.zeros_like(obs_image)
    frames = [blank, blank]
    if decode is not None and imagined is not None:
        next_step = min(max(age - 1, 0), len(imagined) - 1)
        frames = list(decode(imagined[[next_step, -1]]))
    panel = np.concatenate([obs_image, *frames, goal_image], axis=1)
    return np.repeat(np.repeat(panel, scale, axis=0), scale, axis=1)


EpisodeEnd = Callable[[np.ndarray, np.ndarray, np.ndarray, dict], None]  # (start, goal, final image, state)


def run_episode(env: gym.Env, controller: Controller, seed: int, decode: Decode | None = None,
                record: bool = False, on_end: EpisodeEnd | None = None) -> tuple[EpisodeOutcome, list[np.ndarray]]:
    """One episode until success or truncation -> (outcome, video frames if `record`).

    on_end(start image, goal image, final image, controller state) runs after the last step (e.g. subgoal strips).
    """
    obs, info = env.reset(seed=seed)
    start_image = obs["image"]
    goal_image = info.get("goal_image", getattr(env.unwrapped, "goal_image", None))
    if goal_image is None:
        raise ValueError("env: expected info['goal_image'] from reset() or an env.goal_image attribute, found neither")
    state = reset_controller(controller, goal_image, seed)
    frames, act_seconds, steps_to_success = [], [], None
    done, steps = False, 0
    while not done:
        started = time.perf_counter()
        state, action = controller.act(state, {"image": obs["image"], "state": obs["state"]})
        act_seconds.append(time.perf_counter() - started)
        if record:  # imagining and decoding for the video are outside the timed act()
            imagined = controller.imagined(state) if decode is not None and hasattr(controller, "imagined") else None
            frames.append(video_panel(obs["image"], goal_image, imagined, int(state.get("age", 1)), decode))
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if info["success"] and steps_to_success is None:
            steps_to_success = steps
        done = terminated or truncated
    if record:
        frames.append(video_panel(obs["image"], goal_image, None, 0, None))
    if on_end is not None:
        on_end(start_image, goal_image, obs["image"], state)
    outcome = EpisodeOutcome(seed, steps_to_success is not None, steps, steps_to_success, float(info["distance"]),
                             tuple(act_seconds))
    return outcome, frames


def summarize(outcomes: list[EpisodeOutcome]) -> dict[str, Any]:
    """Success rate with its 95% Wilson interval, steps to success, act() time per step (ms, median and p95)."""
    successes = sum(o.success for o in outcomes)
    low, high = wilson_interval(successes, len(outcomes))
    to_success = [o.steps_to_success for o in outcomes if o.steps_to_success is not None]
    act_ms = np.concatenate([np.asarray(o.act_seconds) for o in outcomes]) * 1e3 if outcomes else np.zeros(0)
    return {
        "episodes": len(outcomes), "successes": successes,
        "success_rate": successes / len(outcomes) if outcomes else float("nan"), "success_ci95": [low, high],
        "steps_to_success_mean": float(np.mean(to_success)) if to_success else None,
        "steps_to_success_median": float(np.median(to_success)) if to_success else None,
        "step_ms_median": float(np.median(act_ms)) if len(act_ms) else None,
        "step_ms_p95": float(np.percentile(act_ms, 95)) if len(act_ms) else None,
        "final_distance_median": float(np.median([o.final_distance for o in outcomes])) if outcomes else None,
    }


def evaluate(env: gym.Env, controller: Controller, episodes: int, seed: int = 0, out: str | Path | None = None,
             videos: int = 3, decode: Decode | None = None, progress: bool = True,
             meta: Mapping[str, Any] | None = None,
             on_end: Callable[[int], EpisodeEnd | None] | None = None) -> dict[str, Any]:
    """Run `episodes` episodes (seeds seed, seed + 1, ...) -> summary dict; with `out`, also writes
    summary.json and episode_NNN.mp4 for the first `videos` episodes (reality beside the imagined plan).
    on_end(episode index) -> the run_episode hook of that episode, or None."""
    if episodes < 1:
        raise ValueError(f"episodes: expected >= 1, got {episodes}")
    if videos < 0:
        raise ValueError(f"videos: expected >= 0, got {videos}")
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[EpisodeOutcome] = []
    bar = tqdm(range(episodes), desc="plan", unit="ep", disable=not progress)
    for index in bar:
        record = out_dir is not None and index < videos
        outcome, frames = run_episode(env, controller, seed + index, decode, record,
                                      on_end(index) if on_end is not None else None)
        outcomes.append(outcome)
        bar.set_postfix(success=f"{sum(o.success for o in outcomes)}/{len(outcomes)}")
        if record:
            import imageio.v2 as imageio

            imageio.mimwrite(out_dir / f"episode_{index:03d}.mp4", frames, fps=10, macro_block_size=1)
    summary = {**dict(meta or {}), "seed": seed, **summarize(outcomes),
               # per-step timings live in the aggregate; the JSON stays readable
               "per_episode": [{k: v for k, v in dataclasses.asdict(o).items() if k != "act_seconds"}
                               for o in outcomes]}
    if out_dir is not None:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
