"""Simulated tasks: `make(name, **overrides)` builds any registered env.

Backends are imported lazily: robosuite and pybullet only when one of their tasks is
made, and a missing one names the pip extra to install.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import gymnasium as gym

from hvp.registry import Registry

ENVS: Registry[gym.Env] = Registry("env")

_NATIVE = {"backend": "mujoco", "image": "64x64"}
for _difficulty in ("easy", "medium", "hard"):
    ENVS.register(f"maze-{_difficulty}", "hvp.sim.maze:MazeEnv", difficulty=_difficulty,
                  info={**_NATIVE, "action_dim": 2, "horizon": {"easy": 60, "medium": 100, "hard": 150}[_difficulty]})
ENVS.register("push", "hvp.sim.push:PushEnv", variant="push", info={**_NATIVE, "action_dim": 2, "horizon": 80})
ENVS.register("push-wall", "hvp.sim.push:PushEnv", variant="push-wall",
              info={**_NATIVE, "action_dim": 2, "horizon": 200})
ENVS.register("reach", "hvp.sim.reach:ReachEnv", info={**_NATIVE, "action_dim": 2, "horizon": 50})
for _task, _horizon in (("lift", 60), ("stack", 100), ("door", 80)):
    ENVS.register(f"robosuite-{_task}", "hvp.sim.robosuite_env:RobosuiteEnv", extra="robosuite", task=_task,
                  info={"backend": "robosuite", "image": "64x64", "action_dim": 4, "horizon": _horizon})
ENVS.register("pybullet-kuka-reach", "hvp.sim.pybullet_env:KukaReachEnv", extra="pybullet",
              info={"backend": "pybullet", "image": "64x64", "action_dim": 7, "horizon": 50})
ENVS.register("pybullet-push", "hvp.sim.pybullet_env:PushEnv", extra="pybullet",
              info={"backend": "pybullet", "image": "64x64", "action_dim": 2, "horizon": 50})


def make(name: str, **overrides: Any) -> gym.Env:
    """Build a registered task; overrides go to its constructor (image_size, max_steps, randomization, ...)."""
    return ENVS.make(name, **overrides)


def task_state_cost(name: str | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The cost-to-go of registered task `name` between true states, without building the task:
    state_cost(states float [..., S], goal_state float [S]) -> float64 [...], 0 at the goal. Planners
    read it on states estimated from latents (hvp.models.readout; planners/costs.StateCost)."""
    if not name:
        raise ValueError("task: the readout's dataset names no task (its env_args have no env_name), so there is "
                         "no state cost to plan with; use the temporal cost")
    cost = getattr(ENVS.entry(name).resolve(), "state_cost", None)
    if cost is None:
        raise ValueError(f"task {name!r} defines no state_cost(); plan it with the temporal or latent cost")
    return cost


def task_proprio_state_dims(name: str | None) -> tuple[int, ...]:
    """The true-state dims that registered task `name`'s proprioception measures, in its order (proprio()[j] is
    true_state[dims[j]]), without building the task; a clear error where it measures none."""
    dims = tuple(getattr(ENVS.entry(name).resolve(), "proprio_state_dims", ())) if name else ()
    if not dims:
        raise ValueError(f"task {name!r}: its proprioception measures no part of its true state "
                         "(no proprio_state_dims); plan without proprioception")
    return dims


def names() -> list[str]:
    return ENVS.names()


def from_mjcf(path: str, **kwargs: Any) -> gym.Env:
    """Turn a user's MJCF file into a task; see hvp.sim.custom.MjcfTaskEnv for the arguments."""
    from hvp.sim.custom import MjcfTaskEnv

    return MjcfTaskEnv(path, **kwargs)
