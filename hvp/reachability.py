"""Controller outcomes, and the reachability model refined on them (models/reachability.py).

An attempt replays a dataset episode in the simulator up to a start frame t (the episode's
own seed and actions: the simulator is deterministic), aims the controller at frame t + k
of the same episode (a target the exploration reached in k steps) and lets it act for
`budget` steps. Arrival is judged on the simulator's true state (the first `graded_dims`
entries of true_state within `radius` of the target frame's: the agent by default, agent and
block for pushing): grading only, the controller sees images.

    outcomes = collect_outcomes(env, controller, dataset, attempts=200, budget=25, max_offset=40, seed=0)
    save_outcomes("runs/maze-hard/reachability/outcomes.hdf5", outcomes, {"env": "maze-hard"})
    record = refine_run("runs/maze-hard", dataset, outcomes, out="runs/maze-hard/reachability")
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import h5py
import numpy as np
from tqdm.auto import tqdm

from hvp.agent import reset_controller
from hvp.contracts import Controller, encode_in_chunks
from hvp.data import TrajectoryDataset

OUTCOME_FIELDS = ("start_image", "target_image", "steps", "reached", "offset", "final_error", "episode", "start_frame")


class OutcomeError(ValueError):
    """An outcomes file or dataset that cannot be used (names the file and what is wrong)."""


def replay_to(env: gym.Env, episode: Mapping[str, Any], frame: int, tolerance: float = 1e-3) -> dict[str, np.ndarray]:
    """Reset `env` with the episode's seed and re-apply its actions up to `frame` -> the observation there.
    Raises OutcomeError when the simulator does not reproduce the recorded true state (another env version)."""
    obs, info = env.reset(seed=int(episode["seed"]))
    for t in range(frame):
        obs, _, _, _, info = env.step(episode["action"][t])
    error = float(np.max(np.abs(info["true_state"] - episode["true_state"][frame])))
    if error > tolerance:
        raise OutcomeError(f"dataset: replaying episode seed {episode['seed']} to frame {frame} gives a true state "
                           f"{error:.4f} away from the recorded one; was it collected with this env and version?")
    return obs


def attempt(env: gym.Env, controller: Controller, target_image: np.ndarray, target_position: np.ndarray,
            obs: Mapping[str, np.ndarray], budget: int, radius: float, seed: int) -> tuple[int, bool, float]:
    """Aim `controller` at `target_image` from `obs` for at most `budget` steps -> (steps taken, reached,
    final distance of the agent to `target_position`)."""
    state = reset_controller(controller, target_image, seed)
    error = float("inf")
    for step in range(1, budget + 1):
        state, action = controller.act(state, obs)
        obs, _, _, _, info = env.step(action)
        error = float(np.linalg.norm(info["true_state"][:len(target_position)] - target_position))
        if error < radius:
            return step, True, error
    return budget, False, error


def collect_outcomes(env: gym.Env, controller: Controller, dataset: TrajectoryDataset, attempts: int, budget: int,
                     max_offset: int, radius: float, seed: int = 0, progress: bool = True,
                     graded_dims: int = 2) -> dict[str, np.ndarray]:
    """`attempts` aims of `controller` at frames 1..max_offset steps ahead in dataset episodes -> arrays
    OUTCOME_FIELDS (images uint8 [M, h, w, 3]; steps, offset, episode, start_frame int64 [M]; reached bool [M];
    final_error float32 [M]). Graded on true_state[:graded_dims]: 2 is the agent's position (the ball, the
    pusher); 4 adds the block's when pushing, so parking the pusher beside an unmoved block is no arrival."""
    if attempts < 1 or budget < 1 or max_offset < 1 or graded_dims < 1:
        raise ValueError(f"attempts, budget, max_offset, graded_dims: expected >= 1 each, got {attempts}, {budget}, "
                         f"{max_offset}, {graded_dims}")
    usable = [i for i, e in enumerate(dataset.episodes) if len(e["image"]) > 1 and "seed" in e]
    if not usable:
        raise OutcomeError("dataset: no episode with a recorded seed and at least 2 frames (hvp collect writes both)")
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {field: [] for field in OUTCOME_FIELDS}
    for index in tqdm(range(attempts), desc="controller outcomes", unit="attempt", disable=not progress):
        number = usable[rng.integers(len(usable))]
        episode = dataset.episodes[number]
        offset = int(rng.integers(1, min(max_offset, len(episode["image"]) - 1) + 1))
        start = int(rng.integers(0, len(episode["image"]) - offset))
        obs = replay_to(env, episode, start)
        target_position = episode["true_state"][start + offset][:graded_dims]
        steps, reached, error = attempt(env, controller, episode["image"][start + offset], target_position, obs,
                                        budget, radius, seed + index)
        for field, value in zip(OUTCOME_FIELDS, (episode["image"][start], episode["image"][start + offset], steps,
                                                 reached, offset, error, number, start)):
            rows[field].append(value)
    return {field: np.asarray(values, np.float32 if field == "final_error" else None)
            for field, values in rows.items()}


def save_outcomes(path: str | os.PathLike, outcomes: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write outcomes to an HDF5 file atomically (a temporary beside it, then a rename): never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with h5py.File(temporary, "w") as file:
        for field in OUTCOME_FIELDS:
            file.create_dataset(field, data=outcomes[field])
        file.attrs.update({key: value for key, value in attrs.items()})
    os.replace(temporary, path)
    return path


def load_outcomes(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """-> (arrays OUTCOME_FIELDS, attrs) of a file written by save_outcomes."""
    try:
        with h5py.File(path, "r") as file:
            missing = [field for field in OUTCOME_FIELDS if field not in file]
            if missing:
                raise OutcomeError(f"{os.fspath(path)!r}: not an outcomes file (missing {', '.join(missing)})")
            return {field: file[field][()] for field in OUTCOME_FIELDS}, dict(file.attrs)
    except OSError as error:
        raise OutcomeError(f"{os.fspath(path)!r}: cannot read it as HDF5 ({error})") from error


def refine_run(run_dir: str | Path, dataset: TrajectoryDataset, outcomes: Mapping[str, np.ndarray], budget: int,
               out: str | Path, distance_dir: str | Path | None = None, held_out: float = 0.25, preset: str = "cpu",
               dataset_episodes: int = 100, overrides: Mapping[str, Any] | None = None, threads: int = 1,
               progress: bool = True) -> dict[str, Any]:
    """Refine the run's temporal distance on `outcomes` (a held-out share kept for scoring), save it to `out`
    (the temporal-distance format: `hvp plan --distance OUT` uses it) -> the record, with scores before/after.
    `overrides`: ReachabilityConfig fields (steps, seed, ...) over the preset."""
    from hvp.models.fit_distance import DistanceTrainConfig, episode_latents
    from hvp.models.reachability import Outcomes, ReachabilityConfig, refine_reachability, score_reachability
    from hvp.models.runtime import load_runtime
    from hvp.models.temporal_distance import TorchDistance, load_distance, save_distance

    started = time.perf_counter()
    runtime = load_runtime(str(run_dir), device="cpu", threads=threads)
    distance = load_distance(distance_dir or Path(run_dir) / "distance")
    everything = Outcomes(encode_in_chunks(runtime, outcomes["start_image"]),
                          encode_in_chunks(runtime, outcomes["target_image"]),
                          outcomes["steps"].astype(np.float32), outcomes["reached"].astype(bool), budget)
    order = np.random.default_rng(0).permutation(len(everything.steps))
    cut = int(round(len(order) * (1 - held_out)))
    if not 0 < cut < len(order):
        raise OutcomeError(f"outcomes: {len(order)} attempts leave none for training or for scoring at held_out "
                           f"{held_out}; collect more attempts")
    train, test = everything.subset(order[:cut]), everything.subset(order[cut:])
    metric = DistanceTrainConfig.preset(preset)
    latents = episode_latents(runtime, dataset.episodes[:dataset_episodes], metric.imagine_horizon)
    config = ReachabilityConfig.preset(preset, **dict(overrides or {}))
    refined = TorchDistance(refine_reachability(distance.net, train, latents, config, metric, progress, threads))
    record = {"world_model": str(run_dir), "budget": budget, "attempts": len(order), "held_out_attempts": len(test.steps),
              "reachability": config.to_dict(), "dataset_episodes": min(dataset_episodes, len(dataset)),
              "before": {"train": score_reachability(distance, train), "held_out": score_reachability(distance, test)},
              "after": {"train": score_reachability(refined, train), "held_out": score_reachability(refined, test)}}
    record["wall_s"] = round(time.perf_counter() - started, 1)
    save_distance(out, refined.net, extra=record)
    return record
