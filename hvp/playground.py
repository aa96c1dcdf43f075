"""The world-models playground: a few functions that make hvp usable within a day (docs/playground.md).

    import hvp.playground as wm
    episodes = wm.simulate("maze-easy", "explore", episodes=10)          # collect
    wm.save_trajectories(episodes, "runs/data/mine.hdf5")                 # one robomimic-style HDF5
    runtime = wm.load_model("runs/maze-easy")                             # or your own ModelRuntime
    state = wm.observe(runtime, runtime.initial_state(1), image, action)  # filter one frame
    future = wm.predict(runtime, state, actions)                          # {"latents", "images"}, state untouched
    result = wm.plan_to_goal("maze-easy", runtime, seed=3)                # one closed-loop episode

A model is anything that follows hvp.contracts.ModelRuntime; a run directory, a name in
hvp.extension.MODELS or an object are all accepted wherever `model` appears.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from hvp.contracts import Controller, ModelState, check_array, observe_frame
from hvp.data import save_trajectories
from hvp.extension import MODELS, check_env, check_runtime, make_model
from hvp.simulate import simulate

__all__ = ["simulate", "save_trajectories", "load_model", "observe", "predict", "mpc_controller",
           "hierarchical_controller", "plan_to_goal"]


def load_model(model: Any, **kwargs: Any) -> Any:
    """A checked ModelRuntime from a run directory (hvp train's RSSM), a name in hvp.extension.MODELS, or an object."""
    if isinstance(model, (str, os.PathLike)):
        if Path(model).is_dir():
            return make_model("rssm", run_dir=os.fspath(model), **kwargs)
        if str(model) in MODELS:
            return make_model(str(model), **kwargs)
        raise ValueError(f"model: expected a run directory or one of {MODELS.names()} (hvp.extension.MODELS), "
                         f"got {os.fspath(model)!r}")
    return check_runtime(model)


def observe(runtime: Any, state: ModelState, image: np.ndarray, action: np.ndarray,
            proprio: np.ndarray | None = None) -> ModelState:
    """Filter one frame: image uint8 [h, w, 3] (or [B, h, w, 3]) that followed `action` float32 [A] (or [B, A]);
    for a model that observes its robot state, also the robot's measured state `proprio` [S] (or [B, S]).

    Returns the new state (batch B, 1 for a single image); `state` is not changed.
    """
    images = np.asarray(image)
    actions = np.asarray(action, np.float32)
    measured = None if proprio is None else np.asarray(proprio, np.float32)
    return observe_frame(runtime, state, images[None] if images.ndim == 3 else images,
                         actions[None] if actions.ndim == 1 else actions,
                         measured[None] if measured is not None and measured.ndim == 1 else measured)


def predict(runtime: Any, state: ModelState, actions: np.ndarray,
            reference: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Imagine the future of `state` under actions float32 [H, A] or [N, H, A].

    -> {"latents": float32 [(N,) H, D], "images": uint8 [(N,) H, h, w, 3]} (the N axis as in `actions`).
    The runtime sees a copy of `state`, so the caller's state is never changed, whatever the runtime does.
    `reference` uint8 [h, w, 3], the last image observed: every predicted image is drawn on it, keeping its pixels
    where nothing moved (runtimes with draws_on_reference only: a model trained with --reference-blend).
    """
    actions = np.asarray(actions, np.float32)
    if actions.ndim not in (2, 3):
        raise ValueError(f"actions: expected float32 [H, A] or [N, H, A], got shape {actions.shape}")
    batched = actions if actions.ndim == 3 else actions[None]
    latents = runtime.imagine({key: np.array(value, copy=True) for key, value in state.items()}, batched)
    if reference is None:
        images = runtime.decode(latents)
    elif not getattr(runtime, "draws_on_reference", False):
        raise ValueError(f"reference: {type(runtime).__name__} does not draw on a reference frame (a model trained "
                         "with hvp train --reference-blend does)")
    else:
        reference = check_array("reference", np.asarray(reference), (None, None, 3), np.uint8)
        images = runtime.decode(latents, np.broadcast_to(reference, (*latents.shape[:-1], *reference.shape)))
    if actions.ndim == 2:
        return {"latents": latents[0], "images": images[0]}
    return {"latents": latents, "images": images}


def mpc_controller(runtime: Any, planner: str = "cem", cost: str = "latent", *, preset: str = "cpu",
                   horizon: int | None = None, seed: int = 0, distance_dir: str | os.PathLike | None = None,
                   optimizer_overrides: Mapping[str, Any] | None = None,
                   readout_dir: str | os.PathLike | None = None) -> Controller:
    """Flat latent MPC over any ModelRuntime: `planner` from hvp.planners.OPTIMIZERS, `cost` latent | temporal | pixel
    | readout ("temporal" needs `distance_dir`, a model from hvp train-distance; "readout" needs `readout_dir`, from
    hvp train-readout)."""
    from hvp.agent import build_cost
    from hvp import deploy

    return deploy.mpc_controller(runtime, build_cost(cost, runtime, distance_dir, readout_dir), planner, preset,
                                 horizon, seed, optimizer_overrides)


def hierarchical_controller(run_dir: Any, planner: str = "cem", cost: str = "temporal", *, subgoals: str = "auto",
                            preset: str = "cpu", seed: int = 0, distance_dir: str | os.PathLike | None = None,
                            threads: int | None = None, **options: Any) -> Controller:
    """The subgoal hierarchy of hvp/hierarchy.py over the run in `run_dir` (world model, RUN/distance and its subgoal
    source). subgoals: "graph" (RUN/graph_nodes.safetensors from hvp graph-nodes; plan it with cost "latent"),
    "generated" (RUN/subgoals from hvp train-subgoals), or "auto": graph when the run has nodes, else generated.

    NotImplementedError when `run_dir` is not a run directory (a registered model plans flat); FileNotFoundError
    naming the file and the command that makes it when the run lacks what the mode needs.
    """
    from hvp import hierarchy

    if not isinstance(run_dir, (str, os.PathLike)) or not Path(run_dir).is_dir():
        raise NotImplementedError(f"hierarchical=True builds from a run directory (world model, distance/, subgoals/ "
                                  f"or graph nodes); got {type(run_dir).__name__}, so plan flat with this model")
    nodes = Path(run_dir) / hierarchy.GRAPH_NODES_FILE
    if subgoals == "auto":
        subgoals = "graph" if nodes.is_file() else "generated"
    needed = {"graph": {nodes: "hvp graph-nodes RUN --data DATA.hdf5"},
              "generated": {Path(distance_dir) if distance_dir else Path(run_dir) / "distance": "hvp train-distance",
                            Path(run_dir) / hierarchy.SUBGOALS_DIR: "hvp train-subgoals"}}.get(subgoals, {})
    for path, command in needed.items():
        if not path.exists():
            raise FileNotFoundError(f"model: hierarchical planning with {subgoals} subgoals needs {path}; make it "
                                    f"with {command}")
    controller, _ = hierarchy.build_hierarchical(run_dir, subgoals, planner=planner, cost=cost, preset=preset,
                                                 seed=seed, distance_dir=distance_dir, threads=threads, **options)
    return controller


class _GoalOverride(gym.Wrapper):
    """Reports a caller's goal image from reset() in place of the env's own."""

    def __init__(self, env: gym.Env, goal_image: np.ndarray) -> None:
        super().__init__(env)
        self.goal_image = goal_image

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "goal_image": self.goal_image}


def plan_to_goal(env: str | gym.Env, model: Any, goal_image: np.ndarray | None = None, *, planner: str = "cem",
                 cost: str = "latent", preset: str = "cpu", horizon: int | None = None, max_steps: int | None = None,
                 seed: int = 0, hierarchical: bool = False, subgoals: str = "auto",
                 distance_dir: str | os.PathLike | None = None, record: bool = False) -> dict[str, Any]:
    """One closed-loop episode of `env` (a registered name or an Env) toward `goal_image` uint8 [h, w, 3]
    (default: the env's own goal for `seed`), planned on `model`: flat latent MPC, or with `hierarchical` subgoals
    from a run directory (`subgoals`: "auto", "graph" or "generated", see hierarchical_controller).

    -> {"success", "steps", "steps_to_success", "final_distance", "act_ms": float [steps], "frames"}; success and
    distance grade the env's own goal, so with your own `goal_image` judge the frames (record=True: uint8
    [steps + 1, 3h, 12w, 3], reality | imagined next | imagined plan end | goal).
    """
    from hvp.agent import run_episode

    runtime = load_model(model)
    if hierarchical:
        controller = hierarchical_controller(model, planner, cost, subgoals=subgoals, preset=preset, seed=seed,
                                             distance_dir=distance_dir, threads=getattr(runtime, "threads", None))
    else:
        controller = mpc_controller(runtime, planner, cost, preset=preset, horizon=horizon, seed=seed,
                                    distance_dir=distance_dir)
    own_env = isinstance(env, str)
    if own_env:
        from hvp.sim import make

        env = make(env, **({"max_steps": max_steps} if max_steps else {}))
    elif max_steps is not None:
        raise ValueError("max_steps: only for an env given by name; construct your Env with its own step limit")
    else:
        check_env(env)
    try:
        if goal_image is not None:
            env = _GoalOverride(env, goal_image)
        outcome, frames = run_episode(env, controller, seed, runtime.decode, record)
    finally:
        if own_env:
            env.close()
    result = {key: value for key, value in dataclasses.asdict(outcome).items() if key not in ("act_seconds", "seed")}
    return {**result, "act_ms": np.asarray(outcome.act_seconds) * 1e3,
            "frames": np.stack(frames) if frames else None}
