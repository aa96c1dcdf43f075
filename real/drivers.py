"""Robot drivers: the simulator-backed one, and the optional episode interface.

`SimDriver(env)` turns any hvp env (obs {"image", "state"}, `env.goal_image`,
`info["success"]`) into a RobotDriver, so the bridge, the planner and `hvp record`
can be exercised without a robot; a domain-shifted env emulates a real one. It is
given an env instance: hvp.real never imports the simulators (or torch).

What a real robot cannot know (the simulator's true state, the distance to the goal)
stays on the robot side: `SimDriver.evaluation()` reports it per episode for benchmarks
(`hvp robot-server --episode-log`), and none of it crosses the bridge, so no controller
can read it. `episode_info()`, which does cross (in every action reply), holds only
step, success and done.
docs/robot_driver.md shows how to wrap a real controller.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from hvp.contracts import ActionLimits, RobotDriver, check_array

Scalar = bool | int | float | str


@runtime_checkable
class EpisodicDriver(RobotDriver, Protocol):
    """A driver that also starts episodes and reports on them (sims, scripted real set-ups)."""

    def reset(self, seed: int | None) -> np.ndarray | None:
        """Start a new episode; returns its goal image uint8 [h, w, 3], or None if it has none."""

    def episode_info(self) -> Mapping[str, Scalar]:
        """Scalars about the current episode, at least {"step": int, "success": bool, "done": bool}."""


@dataclass
class EpisodeRecord:
    seed: int | None
    steps: int = 0
    success: bool = False  # whether the task was solved at any step of the episode
    done: bool = False
    # evaluation only, never sent to the planner: the simulator's view of every frame (reset frame first)
    true_states: list[list[float]] = field(default_factory=list)  # info["true_state"] per frame
    distances: list[float] = field(default_factory=list)  # info["distance"] to the goal per frame, if the env gives it

    def observe(self, info: Mapping[str, Any]) -> None:
        """Keep the evaluation fields of one frame's env info."""
        if "true_state" in info:
            self.true_states.append(np.asarray(info["true_state"], np.float64).round(6).tolist())
        if "distance" in info:
            self.distances.append(float(info["distance"]))


class SimDriver:
    """An hvp gymnasium env behind the RobotDriver contract.

    The simulator advances only in exec_action, so holding the pose needs no physics:
    hold() records the request and the next action starts from rest (the safety gate
    measures its step change from the rest action).
    """

    def __init__(self, env: Any, *, control_hz: float | None = None, max_delta: float = 0.5, name: str | None = None,
                 shift: str | None = None) -> None:
        space = env.action_space
        if len(space.shape) != 1:
            raise ValueError(f"env.action_space: expected a 1-d Box, got shape {space.shape}")
        obs_space = env.observation_space
        if "image" not in obs_space.spaces or "state" not in obs_space.spaces:
            raise ValueError(f"env.observation_space: expected a Dict with 'image' and 'state', got {obs_space}")
        self.env = env
        image_shape = tuple(int(s) for s in obs_space["image"].shape)
        hz = control_hz or float(env.metadata.get("render_fps", 10))
        self.limits = ActionLimits(low=np.asarray(space.low, np.float32), high=np.asarray(space.high, np.float32),
                                   max_delta=max_delta)
        self.metadata = {
            "name": name or f"sim:{type(env.unwrapped).__name__}",
            "control_hz": hz,
            "image_shape": image_shape,
            "state_dim": int(obs_space["state"].shape[0]),
            "action_dim": int(space.shape[0]),
        }
        if shift is not None:  # a label (sim/randomization.py SHIFTS) that recordings keep in env_args
            self.metadata["shift"] = shift
        self.episodes: list[EpisodeRecord] = []
        self.executed: list[tuple[float, np.ndarray]] = []  # (t, applied action) of every exec_action
        self.holds: list[float] = []  # monotonic times of hold() calls
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, seed: int | None = None) -> np.ndarray:
        self._obs, info = self.env.reset(seed=seed)
        self.episodes.append(EpisodeRecord(seed=seed))
        self.episodes[-1].observe(info)
        return np.asarray(self.env.unwrapped.goal_image, np.uint8).copy()

    def get_obs(self) -> dict[str, np.ndarray]:
        if self._obs is None:
            self.reset(None)
        return {"image": self._obs["image"].copy(), "state": self._obs["state"].astype(np.float32)}

    def exec_action(self, action: np.ndarray, t: float) -> np.ndarray:
        """Step the sim with float32 [A]; returns the action applied (clipped to the action space)."""
        action = check_array("action", action, self.limits.low.shape, np.float32)
        if self._obs is None:
            self.reset(None)
        episode = self.episodes[-1]
        if episode.done:
            raise RuntimeError("exec_action: the episode is over; reset() starts a new one")
        applied = np.clip(action, self.limits.low, self.limits.high).astype(np.float32)
        self._obs, _, terminated, truncated, info = self.env.step(applied)
        episode.steps += 1
        episode.success = episode.success or bool(info.get("success", False))
        episode.done = bool(terminated or truncated)
        episode.observe(info)
        self.executed.append((t, applied.copy()))
        return applied

    def hold(self) -> None:
        self.holds.append(time.monotonic())

    def episode_info(self) -> dict[str, Scalar]:
        if not self.episodes:
            return {"step": 0, "success": False, "done": False}
        episode = self.episodes[-1]
        return {"step": episode.steps, "success": episode.success, "done": episode.done}

    def evaluation(self) -> dict[str, Any]:
        """The latest episode as the simulator saw it, for benchmarks only (never sent over the bridge):
        {"episode", "seed", "steps", "success", "done", "shift", "final_distance", "min_distance", "true_state"}."""
        if not self.episodes:
            raise RuntimeError("evaluation: no episode yet; reset() starts one")
        episode = self.episodes[-1]
        return {"episode": len(self.episodes) - 1, "seed": episode.seed, "steps": episode.steps,
                "success": episode.success, "done": episode.done, "shift": self.metadata.get("shift"),
                "final_distance": episode.distances[-1] if episode.distances else None,
                "min_distance": min(episode.distances) if episode.distances else None,
                "true_state": episode.true_states}

    def close(self) -> None:
        self.env.close()
