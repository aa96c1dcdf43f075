"""State dynamics: an MLP that predicts the task's true low-dimensional state one control step ahead.

Why it exists: on push the RSSM's imagined contact is wrong where the planner needs it right
(straight pushes from rest are imagined at 0.66-0.73 of the true block travel, docs/planning.md),
while the simulator with the same cost plans 100/100. The readout (hvp.models.readout) already reads
the true state out of each filtered belief; this model then imagines in that state space. It learns
from the same recorded `true_state` and actions as the readout, so it needs nothing the readout does
not (simulation records the state; a real-robot dataset would need it measured).

Input: the state, the last `history` executed actions (the state holds positions only; the
actions carry the momentum the pusher still has) and the next action. Output: the state change,
scaled per dimension by the training changes' std, so a block that rarely moves is learned as
carefully as a pusher that always does.

    dynamics, record = train_state_dynamics(dataset, "runs/push/state_dynamics")
    dynamics = load_state_dynamics("runs/push/state_dynamics")          # hvp.contracts.StateDynamics
    states = dynamics.rollout(states, recent_actions, actions)           # [N, S], [N, K, A], [N, H, A] -> [N, H, S]
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hvp.config import Config, require
from hvp.contracts import check_state_rollout
from hvp.data import TrajectoryDataset
from hvp.models.checkpoint import load_small_model, save_small_model
from hvp.models.fit_distance import train_steps
from hvp.models.networks import LatentNormalized, layer_norm_mlp
from hvp.models.readout import episode_true_states
from hvp.models.runtime import resolve_device

FORMAT_VERSION = 1
KIND = "state_dynamics"
STATE_DYNAMICS_DIR = "state_dynamics"


@dataclasses.dataclass(frozen=True)
class StateDynamicsConfig(Config):
    """Network of the state dynamics; state_dim and action_dim come from the dataset."""

    state_dim: int = 5
    action_dim: int = 2
    history: int = 2  # executed actions before the next one that the model sees (K)
    hidden_dim: int = 256
    depth: int = 3

    def validate(self) -> None:
        for name in ("state_dim", "action_dim", "hidden_dim", "depth"):
            require(getattr(self, name) >= 1, "StateDynamicsConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.history >= 0, "StateDynamicsConfig.history must be >= 0 (got {})", self.history)

    @property
    def input_dim(self) -> int:
        return self.state_dim + (self.history + 1) * self.action_dim


@dataclasses.dataclass(frozen=True)
class StateDynamicsTrainConfig(Config):
    steps: int = 8000  # optimizer updates
    batch_size: int = 512
    learning_rate: float = 1e-3
    score_horizon: int = 10  # open-loop steps of the held-out score (the planner's H is 10-14)
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "score_horizon"):
            require(getattr(self, name) >= 1, "StateDynamicsTrainConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.learning_rate > 0, "StateDynamicsTrainConfig.learning_rate must be > 0 (got {})",
                self.learning_rate)


StateDynamicsConfig.PRESETS = {"debug": dict(hidden_dim=32, depth=2), "cpu": {}, "gpu": dict(hidden_dim=512)}
StateDynamicsTrainConfig.PRESETS = {"debug": dict(steps=300, batch_size=128, score_horizon=5), "cpu": {},
                                    "gpu": dict(steps=30_000, batch_size=2048)}


class StateDynamicsNet(LatentNormalized):
    """(states [N, S], recent actions [N, K, A] newest first, actions [N, A]) -> next states [N, S]."""

    def __init__(self, config: StateDynamicsConfig) -> None:
        super().__init__(config.input_dim)
        self.config = config
        self.mlp = layer_norm_mlp(config.input_dim, config.hidden_dim, config.depth, config.state_dim)
        self.register_buffer("change_std", torch.ones(config.state_dim))

    def forward(self, states: torch.Tensor, recent: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([states, recent.flatten(1), actions], dim=1)
        return states + self.mlp(self.normalize(inputs)) * self.change_std

    def rollout(self, states: torch.Tensor, recent: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """states [N, S], recent [N, K, A], actions [N, H, A] -> states after each action [N, H, S]."""
        path = []
        for step in range(actions.shape[1]):
            states = self(states, recent, actions[:, step])
            recent = torch.cat([actions[:, step:step + 1], recent], dim=1)[:, :self.config.history]  # newest first
            path.append(states)
        return torch.stack(path, dim=1)


class TorchStateDynamics:
    """hvp.contracts.StateDynamics over a StateDynamicsNet, numpy in and out."""

    def __init__(self, net: StateDynamicsNet, device: str | torch.device | None = "cpu",
                 task: str | None = None) -> None:
        if not isinstance(net, StateDynamicsNet):
            raise TypeError(f"net: expected a StateDynamicsNet, got {type(net).__name__}")
        self.task = task  # the registered task whose true state this predicts (the dataset's env_name)
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        config = net.config
        self.state_dim, self.action_dim, self.history = config.state_dim, config.action_dim, config.history

    @torch.no_grad()
    def rollout(self, states: np.ndarray, recent_actions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        states, recent_actions, actions = check_state_rollout(self, states, recent_actions, actions)
        tensors = (torch.from_numpy(a).to(self.device) for a in (states, recent_actions, actions))
        return self.net.rollout(*tensors).cpu().numpy()


@dataclasses.dataclass(frozen=True)
class Transitions:
    """One-step samples of episodes: the state, the executed actions before it, the action and the next state."""

    states: np.ndarray  # float32 [M, S]
    recent: np.ndarray  # float32 [M, K, A], newest first; zeros before an episode's first action
    actions: np.ndarray  # float32 [M, A]
    next_states: np.ndarray  # float32 [M, S]


def recent_actions(actions: np.ndarray, history: int) -> np.ndarray:
    """actions float32 [T, A] of one episode -> float32 [T, K, A]: row t holds actions t-1, ..., t-K (zeros before
    the first)."""
    padded = np.concatenate([np.zeros((history, actions.shape[1]), np.float32), actions.astype(np.float32)])
    return np.stack([padded[history - lag:history - lag + len(actions)] for lag in range(1, history + 1)], axis=1)


def transitions(episodes: Sequence[dict[str, np.ndarray]], history: int) -> Transitions:
    """Every (frame, next frame) pair of `episodes`; a clear error when an episode has no true_state."""
    episode_true_states(episodes)  # fails fast, naming the episode without states
    parts = []
    for episode in episodes:
        states, actions = np.asarray(episode["true_state"], np.float32), np.asarray(episode["action"], np.float32)
        parts.append((states[:-1], recent_actions(actions, history)[:-1], actions[:-1], states[1:]))
    return Transitions(*(np.concatenate(column) for column in zip(*parts)))


def fit_state_dynamics(samples: Transitions, model: StateDynamicsConfig, train: StateDynamicsTrainConfig, *,
                       progress: bool = True, threads: int = 1) -> StateDynamicsNet:
    """Regress the standardized one-step state change (mean squared error) -> the net in eval mode."""
    torch.set_num_threads(threads)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    net = StateDynamicsNet(model)
    states, recent, actions, next_states = (torch.from_numpy(a) for a in dataclasses.astuple(samples))
    changes = next_states - states
    net.set_normalization(torch.cat([states, recent.flatten(1), actions], dim=1))
    net.change_std.copy_(changes.std(0).clamp(min=1e-6))
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate)

    def loss() -> torch.Tensor:
        batch = torch.from_numpy(rng.integers(len(states), size=train.batch_size))
        predicted = net(states[batch], recent[batch], actions[batch])
        return nn.functional.mse_loss((predicted - states[batch]) / net.change_std, changes[batch] / net.change_std)

    net.train()
    train_steps(loss, optimizer, train.steps, "train state dynamics", progress=progress)
    return net.eval()


def score_state_dynamics(dynamics: TorchStateDynamics, episodes: Sequence[dict[str, np.ndarray]],
                         horizon: int) -> dict[str, list[float]]:
    """Mean absolute error per state dimension 1 and `horizon` steps open-loop from every frame that has them,
    beside assuming nothing moves (the state held): what the model adds."""
    starts, recents, plans, truths = [], [], [], []
    for episode in episodes:
        states, actions = np.asarray(episode["true_state"], np.float32), np.asarray(episode["action"], np.float32)
        recent = recent_actions(actions, dynamics.history)
        for t in range(len(states) - horizon):
            starts.append(states[t]), recents.append(recent[t])
            plans.append(actions[t:t + horizon]), truths.append(states[t + 1:t + 1 + horizon])
    if not starts:
        raise ValueError(f"episodes: none is longer than the score horizon ({horizon} steps)")
    start, truth = np.stack(starts), np.stack(truths)
    predicted = dynamics.rollout(start, np.stack(recents), np.stack(plans))
    rounded = lambda errors: np.round(errors.mean(0).astype(np.float64), 4).tolist()  # noqa: E731
    return {"step_1": rounded(np.abs(predicted[:, 0] - truth[:, 0])),
            f"step_{horizon}": rounded(np.abs(predicted[:, -1] - truth[:, -1])),
            f"held_state_step_{horizon}": rounded(np.abs(start - truth[:, -1]))}


def train_state_dynamics(dataset: TrajectoryDataset, out: str | Path, *, preset: str = "cpu",
                         model_overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
                         held_out: float = 0.1, threads: int = 1,
                         progress: bool = True) -> tuple[TorchStateDynamics, dict[str, Any]]:
    """Train the state dynamics of `dataset`'s task and save it to `out` -> (the model, the record written to its
    config.json, with held-out errors)."""
    started = time.perf_counter()
    train = StateDynamicsTrainConfig.preset(preset, **(train_overrides or {}))
    fit_set, test_set = dataset.split(held_out, seed=train.seed) if held_out > 0 else (dataset, None)
    if not fit_set.episodes:
        raise ValueError("dataset: expected at least one episode, got none")
    model = StateDynamicsConfig.preset(preset, **(model_overrides or {}))
    samples = transitions(fit_set.episodes, model.history)
    # the state and action sizes are the dataset's
    model = dataclasses.replace(model, state_dim=samples.states.shape[1], action_dim=samples.actions.shape[1])
    task = dataset.env_args.get("env_name")
    dynamics = TorchStateDynamics(fit_state_dynamics(samples, model, train, progress=progress, threads=threads),
                                  task=task)
    errors = {"train": score_state_dynamics(dynamics, fit_set.episodes, train.score_horizon)}
    if test_set is not None:
        errors["held_out"] = score_state_dynamics(dynamics, test_set.episodes, train.score_horizon)
    record = {"train": train.to_dict(), "preset": preset, "task": task, "mean_abs_error": errors,
              "episodes": len(fit_set), "frames": len(samples.states), "wall_s": time.perf_counter() - started}
    save_state_dynamics(out, dynamics.net, record)
    return dynamics, record


def save_state_dynamics(folder: str | os.PathLike, net: StateDynamicsNet, record: dict[str, Any]) -> None:
    """Weights (safetensors) and config.json with `record` (its "task" names the task whose state it predicts)."""
    save_small_model(folder, KIND, FORMAT_VERSION, net, extra=record)


def load_state_dynamics(model_dir: str | os.PathLike, device: str | torch.device | None = "cpu") -> TorchStateDynamics:
    """The TorchStateDynamics saved in `model_dir` by train_state_dynamics (hvp train-state-dynamics). Never
    unpickles."""
    net, config = load_small_model(model_dir, KIND, FORMAT_VERSION,
                                   lambda model: StateDynamicsNet(StateDynamicsConfig.from_dict(model)),
                                   train_hint="hvp train-state-dynamics RUN --data DATA.hdf5")
    return TorchStateDynamics(net, device, task=config.get("task"))
