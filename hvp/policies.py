"""Data-collection policies: random, smooth random, scripted exploration, and the planner itself.

A policy is `reset(env, rng)` then `act(obs, info) -> float32 [A]`. Exploration may read
the simulator's true state: it only gathers data, it never plans toward a goal.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

import gymnasium as gym
import numpy as np


class Policy(Protocol):
    def reset(self, env: gym.Env, rng: np.random.Generator) -> None: ...

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> np.ndarray: ...


class RandomPolicy:
    """Independent uniform actions."""

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        self.rng, self.dim = rng, env.action_space.shape[0]

    def act(self, obs, info) -> np.ndarray:
        return self.rng.uniform(-1, 1, self.dim).astype(np.float32)


class SmoothNoisePolicy:
    """Ornstein-Uhlenbeck actions: temporally correlated, so the agent travels instead of jittering."""

    def __init__(self, theta: float = 0.25, sigma: float = 0.45) -> None:
        self.theta, self.sigma = theta, sigma

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        self.rng = rng
        self.action = rng.uniform(-1, 1, env.action_space.shape[0])

    def act(self, obs, info) -> np.ndarray:
        self.action += -self.theta * self.action + self.sigma * self.rng.normal(size=self.action.shape)
        return np.clip(self.action, -1, 1).astype(np.float32)


class WaypointExplorer:
    """Noisy proportional control of a planar agent toward random waypoints.

    Drives `true_state[:2]` (the ball, the pusher); when the task has an object at
    `true_state[2:4]` (the block), half of the waypoints lie just past it, so pushes happen.
    """

    def __init__(self, gain: float = 4.0, noise: float = 0.3, reach: float = 0.1, patience: int = 25) -> None:
        self.gain, self.noise, self.reach, self.patience = gain, noise, reach, patience

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        self.rng, self.waypoint, self.age = rng, None, 0

    def _new_waypoint(self, true_state: np.ndarray) -> np.ndarray:
        if len(true_state) >= 4 and self.rng.random() < 0.5:
            block = true_state[2:4]
            direction = block - true_state[:2]
            direction /= max(np.linalg.norm(direction), 1e-6)
            return np.clip(block + direction * self.rng.uniform(0.1, 0.5), -0.9, 0.9)
        return self.rng.uniform(-0.9, 0.9, 2)

    def act(self, obs, info) -> np.ndarray:
        position = info["true_state"][:2]
        if self.waypoint is None or self.age > self.patience or np.linalg.norm(self.waypoint - position) < self.reach:
            self.waypoint, self.age = self._new_waypoint(info["true_state"]), 0
        self.age += 1
        action = self.gain * (self.waypoint - position) + self.noise * self.rng.normal(size=2)
        return np.clip(action, -1, 1).astype(np.float32)


class PushExplorer:
    """Goal-directed pushes of the object at `true_state[2:4]` (the block) toward random nearby targets.

    Each push stages behind the object, on the far side from its target, then drives through it, so
    the block travels in chosen directions the way a solved push task moves it (waypoints push it
    only along the line the agent happens to approach on). Needs a planar agent and an object.
    """

    def __init__(self, gain: float = 4.0, noise: float = 0.2, standoff: float = 0.3,
                 reach: tuple[float, float] = (0.2, 0.5), patience: int = 40) -> None:
        self.gain, self.noise, self.standoff, self.reach, self.patience = gain, noise, standoff, reach, patience

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        if not getattr(env.unwrapped, "pushable_object", False):
            raise ValueError(f"policy push: the task {env.unwrapped.__class__.__name__} has no object to push "
                             "(it needs true_state[2:4] to be one, as in push and push-wall)")
        self.rng, self.target, self.staged, self.age = rng, None, False, 0

    def _new_target(self, block: np.ndarray) -> np.ndarray:
        angle = self.rng.uniform(0, 2 * np.pi)
        return np.clip(block + self.rng.uniform(*self.reach) * np.array([np.cos(angle), np.sin(angle)]), -0.7, 0.7)

    def act(self, obs, info) -> np.ndarray:
        pusher, block = info["true_state"][:2], info["true_state"][2:4]
        if self.target is None or self.age > self.patience or np.linalg.norm(self.target - block) < 0.05:
            self.target, self.staged, self.age = self._new_target(block), False, 0
        self.age += 1
        offset = self.target - block
        direction = offset / max(np.linalg.norm(offset), 1e-6)
        stage = block - direction * self.standoff
        self.staged = self.staged or np.linalg.norm(stage - pusher) < 0.08
        waypoint = self.target if self.staged else stage
        action = self.gain * (waypoint - pusher) + self.noise * self.rng.normal(size=2)
        return np.clip(action, -1, 1).astype(np.float32)


class ExplorationMix:
    """Per episode, scripted waypoints (planar tasks) or smooth noise, to cover the state space."""

    def __init__(self, waypoint_share: float = 0.6) -> None:
        self.waypoint_share = waypoint_share
        self.choices = (WaypointExplorer(), SmoothNoisePolicy())

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        planar = env.action_space.shape == (2,) and getattr(env.unwrapped, "planar_agent", False)
        self.current = self.choices[0] if planar and rng.random() < self.waypoint_share else self.choices[1]
        self.current.reset(env, rng)

    def act(self, obs, info) -> np.ndarray:
        return self.current.act(obs, info)


class PlannerPolicy:
    """Latent MPC toward each episode's goal image (hvp.agent.build_controller) as a collection policy:
    episodes from the states the planner itself visits, to refit the model where it plans (PlaNet's data
    loop). Gaussian action noise keeps it exploring. The controller is built in the worker at the first
    reset, so the policy pickles to worker processes as its few arguments."""

    def __init__(self, run: str, planner: str = "cem", cost: str = "temporal", noise: float = 0.3,
                 horizon: int | None = None) -> None:
        if noise < 0:
            raise ValueError(f"noise: expected a standard deviation >= 0, got {noise}")
        self.run, self.planner, self.cost, self.noise, self.horizon = run, planner, cost, noise, horizon
        self.controller = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "controller": None}

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        from hvp.agent import build_controller, reset_controller

        if self.controller is None:
            self.controller, _ = build_controller(self.run, self.planner, self.cost, horizon=self.horizon, threads=1)
        self.rng = rng
        self.state = reset_controller(self.controller, env.unwrapped.goal_image, int(rng.integers(2**31)))

    def act(self, obs, info) -> np.ndarray:
        self.state, action = self.controller.act(self.state, {"image": obs["image"], "state": obs["state"]})
        return np.clip(action + self.noise * self.rng.normal(size=action.shape), -1, 1).astype(np.float32)


POLICIES: dict[str, Callable[[], Policy]] = {
    "random": RandomPolicy,
    "smooth": SmoothNoisePolicy,
    "explore": ExplorationMix,
    "push": PushExplorer,
}


def make_policy(policy: str | Policy) -> Policy:
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"policy: unknown name {policy!r}; choose one of {sorted(POLICIES)} or pass an object "
                             "with reset(env, rng) and act(obs, info)")
        return POLICIES[policy]()
    if not (hasattr(policy, "reset") and hasattr(policy, "act")):
        raise TypeError(f"policy: expected a name or an object with reset(env, rng) and act(obs, info), got {policy!r}")
    return policy
