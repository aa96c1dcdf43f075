"""Record episodes on a robot through the ZMQ bridge into hvp's HDF5 layout (hvp.data).

    with RobotClient("tcp://127.0.0.1:5555") as robot:
        robot.handshake()
        record(robot, ExplorationController(robot.robot.action_dim), "real.hdf5", episodes=10, shift="mild")

The loop is hvp.deploy's (arm, get_obs -> act -> send_action paced to the robot's rate,
disarm); a tap on the controller keeps every observation it was shown. What is stored:

- ``obs/image``, ``obs/state``: the robot's observations, one per frame (the last one read
  after the episode, while disarmed);
- ``actions``: what the robot *applied* (its echo after the safety gate), not what was asked;
- ``obs/true_state``: NaN [T+1, 1]. A real robot knows no simulator state; evaluation code
  that needs it (the latent probe) must not be run on recorded data;
- ``goal/image``: the robot's goal image on reset, else the episode's last frame;
- ``env_args``: the robot's name, control rate, action limits and (if given) domain shift.

Torch-free, like hvp.deploy: it runs on the robot computer. Resumable: episode i is seeded
seed + i and written as its own atomic shard, so a rerun records only the missing ones.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hvp import data
from hvp.contracts import Controller
from hvp.deploy import DeployError, run_episode, start_episode
from hvp.real.client import RobotClient, RobotInfo

POLICIES = ("scripted", "planner", "replay")


class ExplorationController:
    """Smooth random actions (Ornstein-Uhlenbeck in [-1, 1]), blind to images: the planner side needs no sim state."""

    def __init__(self, action_dim: int, theta: float = 0.25, sigma: float = 0.45) -> None:
        if action_dim < 1:
            raise ValueError(f"action_dim: expected >= 1, got {action_dim}")
        self.action_dim, self.theta, self.sigma = action_dim, theta, sigma

    def reset(self, goal_image: np.ndarray | None, seed: int | None = None) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        return {"rng": rng, "action": rng.uniform(-1, 1, self.action_dim)}

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        rng = state["rng"]
        action = state["action"] - self.theta * state["action"] + self.sigma * rng.normal(size=self.action_dim)
        action = np.clip(action, -1, 1)
        return {"rng": rng, "action": action}, action.astype(np.float32)


class ReplayController:
    """Replays recorded action sequences: the episode seeded s plays sequence s mod len(sequences), then rests."""

    def __init__(self, sequences: Sequence[np.ndarray]) -> None:
        if not sequences:
            raise ValueError("sequences: expected at least one action sequence to replay, got none")
        self.sequences = [np.asarray(s, np.float32) for s in sequences]

    @classmethod
    def from_dataset(cls, path: str | os.PathLike) -> "ReplayController":
        """The actions of every episode of an hvp dataset (without the zero row after the final frame)."""
        return cls([episode["action"][:-1] for episode in data.load_dataset(path).episodes])

    def length(self, seed: int) -> int:
        return len(self.sequences[seed % len(self.sequences)])

    def reset(self, goal_image: np.ndarray | None, seed: int | None = None) -> dict[str, Any]:
        return {"actions": self.sequences[(seed or 0) % len(self.sequences)], "step": 0}

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        actions, step = state["actions"], state["step"]
        action = actions[step] if step < len(actions) else np.zeros(actions.shape[1], np.float32)
        return {"actions": actions, "step": step + 1}, action


class ObservationTap:
    """Wraps a Controller and keeps every observation it is shown (the frames of the episode being recorded)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.frames: list[Mapping[str, np.ndarray]] = []

    def reset(self, goal_image: np.ndarray | None, seed: int | None = None) -> dict[str, Any]:
        self.frames = []
        return self.controller.reset(goal_image, seed=seed)

    def act(self, state: dict[str, Any], obs: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        self.frames.append(obs)
        return self.controller.act(state, obs)


@dataclass(frozen=True)
class RecordedEpisode:
    index: int
    seed: int
    frames: int
    success: bool


def robot_env_args(info: RobotInfo, policy: str, shift: str | None = None) -> dict[str, Any]:
    """env_args of a recorded dataset: who recorded it, at what rate, within which limits, under which shift."""
    robot = {"name": info.name, "control_hz": info.control_hz, "image_shape": list(info.image_shape),
             "state_dim": info.state_dim, "action_dim": info.action_dim,
             "limits": {"low": info.limits.low.tolist(), "high": info.limits.high.tolist(),
                        "max_delta": float(info.limits.max_delta)},
             "shift": shift if shift is not None else info.metadata.get("shift")}
    return {"env_name": info.name, "source": "hvp record", "policy": policy, "robot": robot}


def record_episode(robot: RobotClient, controller: Controller, seed: int, max_steps: int,
                   goal_image: np.ndarray | None = None, needs_goal: bool = False) -> data.Episode:
    """One episode through the bridge, as an hvp.data episode dict (applied actions, NaN true_state)."""
    try:
        goal = start_episode(robot, seed, goal_image)
    except DeployError:
        if needs_goal:
            raise
        goal = None  # neither the robot nor the caller has a goal: fine for exploration and replay
    tap = ObservationTap(controller)
    result = run_episode(robot, tap, goal, seed, max_steps)
    frames = [*tap.frames, robot.get_obs()]  # the result of the last action (get_obs needs no arming)
    images = np.stack([frame["image"] for frame in frames])
    actions = np.concatenate([result.applied, np.zeros((1, robot.robot.action_dim), np.float32)])
    return {"image": images, "state": np.stack([frame["state"] for frame in frames]).astype(np.float32),
            "true_state": np.full((len(frames), 1), np.nan, np.float32), "action": actions,
            "reward": np.zeros(len(frames), np.float32), "goal_image": images[-1] if goal is None else goal,
            "success": result.success, "seed": seed}


def record(robot: RobotClient, controller: Controller, out: str | os.PathLike, episodes: int, *, seed: int = 0,
           max_steps: int = 200, policy: str = "scripted", shift: str | None = None,
           goal_image: np.ndarray | None = None,
           on_episode: Callable[[RecordedEpisode], None] | None = None) -> list[RecordedEpisode]:
    """Record episodes 0..episodes-1 (those not yet in `out`) and finalize `out`; the robot must be handshaken.

    A ReplayController's episodes stop when its sequence ends (or at max_steps).
    """
    if robot.robot is None:
        raise DeployError("robot: call robot.handshake() before recording")
    for name, value in (("episodes", episodes), ("max_steps", max_steps)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    env_args = robot_env_args(robot.robot, policy, shift)
    data.remove_stale_temporaries(out)
    done = set(data.finished_indices(out))
    recorded = []
    for index in (i for i in range(episodes) if i not in done):
        steps = min(max_steps, controller.length(seed + index)) if isinstance(controller, ReplayController) else max_steps
        episode = record_episode(robot, controller, seed + index, steps, goal_image, needs_goal=policy == "planner")
        data.write_part(out, index, episode, env_args)
        recorded.append(RecordedEpisode(index, seed + index, len(episode["image"]), episode["success"]))
        if on_episode is not None:
            on_episode(recorded[-1])
    data.finalize(out, env_args)
    return recorded
