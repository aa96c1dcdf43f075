"""Imagining in the task's state: a ModelRuntime whose latents are states read out of the world model's beliefs.

The world model still does the seeing: every image is filtered into its belief, and a
StateReadout reads the task's state (for push: pusher and block positions) out of that belief
and out of the goal image's encoding. Plans are then rolled out by a StateDynamics model of
that state instead of by the latent prior, whose contact is wrong where push needs it right
(docs/planning.md). Any planner, cost or controller written against ModelRuntime works on it;
the cost to use is the task's own, StateCost(None, task.state_cost).

Its model state is the world model's belief plus the executed actions the dynamics conditions
on, under RECENT_ACTIONS. With `proprio_dims`, the robot's proprioception (obs["state"], through
observe_proprio) replaces the readout's estimate of the state dims it measures, under PROPRIO.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hvp.contracts import ModelRuntime, ModelState, StateDynamics, StateReadout, check_array, with_newest_action

RECENT_ACTIONS = "recent_actions"  # float32 [B, K, A], newest first
PROPRIO = "proprio"  # float32 [B, P]: the last proprioception, NaN before the first


class StateSpaceRuntime:
    """hvp.contracts.ModelRuntime over (world model runtime, its state readout, a state dynamics model)."""

    def __init__(self, runtime: ModelRuntime, readout: StateReadout, dynamics: StateDynamics,
                 proprio_dims: Sequence[int] = ()) -> None:
        for name, value, kind in (("runtime", runtime, ModelRuntime), ("readout", readout, StateReadout),
                                  ("dynamics", dynamics, StateDynamics)):
            if not isinstance(value, kind):
                raise TypeError(f"{name}: expected an hvp.contracts.{kind.__name__}, got {type(value).__name__}")
        if dynamics.action_dim != runtime.action_dim:
            raise ValueError(f"dynamics: predicts under {dynamics.action_dim}-dim actions, the world model takes "
                             f"{runtime.action_dim}")
        # both name the task whose state they mean when they were trained on a dataset of it
        readout_task, dynamics_task = getattr(readout, "task", None), getattr(dynamics, "task", None)
        if readout_task and dynamics_task and readout_task != dynamics_task:
            raise ValueError(f"dynamics: trained on task {dynamics_task!r}, the readout reads {readout_task!r}")
        self.proprio_dims = np.asarray(proprio_dims, np.int64)  # proprio[:, j] measures state dim proprio_dims[j]
        if np.any((self.proprio_dims < 0) | (self.proprio_dims >= dynamics.state_dim)):
            raise ValueError(f"proprio_dims: expected state dims in [0, {dynamics.state_dim}), "
                             f"got {list(proprio_dims)}")
        self.runtime, self.readout, self.dynamics = runtime, readout, dynamics
        self.image_shape, self.action_dim = runtime.image_shape, runtime.action_dim
        self.latent_dim = dynamics.state_dim
        self.task = readout_task

    def initial_state(self, batch: int) -> ModelState:
        recent = np.zeros((batch, self.dynamics.history, self.action_dim), np.float32)
        proprio = np.full((batch, len(self.proprio_dims)), np.nan, np.float32)
        return {**self.runtime.initial_state(batch), RECENT_ACTIONS: recent, PROPRIO: proprio}

    def encode(self, images: np.ndarray) -> np.ndarray:
        return self._read(self.runtime.encode(images))

    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        belief, recent = self._split(state)
        belief = self.runtime.observe(belief, images, actions)
        return {**belief, RECENT_ACTIONS: with_newest_action(recent, actions), PROPRIO: state[PROPRIO]}

    @property
    def observes_robot_state(self) -> bool:
        """Whether the world model's belief takes the measured robot state too (its observe_robot_state)."""
        return bool(getattr(self.runtime, "observes_robot_state", False))

    def observe_proprio(self, state: ModelState, proprio: np.ndarray) -> ModelState:
        """proprio float32 [B, P >= len(proprio_dims)]: its first len(proprio_dims) values replace the readout's
        estimate of those state dims until the next measurement; a world model that observes_robot_state also
        takes it into its belief."""
        belief, _ = self._split(state)
        if not len(self.proprio_dims) and not self.observes_robot_state:
            raise TypeError("observe_proprio: this StateSpaceRuntime was built without proprio_dims, so it does not "
                            "know which state dims proprioception measures")
        proprio = check_array("proprio", proprio, (len(state[RECENT_ACTIONS]), None), np.float32)
        if proprio.shape[1] < len(self.proprio_dims) or not np.all(np.isfinite(proprio)):
            raise ValueError(f"proprio: expected at least {len(self.proprio_dims)} finite values per row, got shape "
                             f"{proprio.shape}")
        if self.observes_robot_state:
            belief = self.runtime.observe_proprio(belief, proprio)
        return {**state, **belief, PROPRIO: proprio[:, :len(self.proprio_dims)].copy()}

    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        belief, recent = self._split(state)
        states = self._states(belief, state[PROPRIO])
        if len(states) == 1 and len(actions) > 1:  # a batch-1 belief plans a whole population
            states, recent = np.repeat(states, len(actions), 0), np.repeat(recent, len(actions), 0)
        return self.dynamics.rollout(states, recent, actions).astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        raise TypeError("StateSpaceRuntime.decode: its latents are task states, which have no image: plan with a "
                        "state cost (StateCost(None, task.state_cost)), not a pixel cost")

    def latent(self, state: ModelState) -> np.ndarray:
        return self._states(self._split(state)[0], state[PROPRIO])

    def _states(self, belief: ModelState, proprio: np.ndarray) -> np.ndarray:
        """The belief's read-out states [B, S], the measured dims taken from proprio [B, P] where it holds values."""
        states = self._read(self.runtime.latent(belief))
        measured = np.isfinite(proprio)  # before the first measurement, the readout's estimate stands
        states[:, self.proprio_dims] = np.where(measured, proprio, states[:, self.proprio_dims])
        return states

    def _read(self, latents: np.ndarray) -> np.ndarray:
        return np.asarray(self.readout.states(latents.astype(np.float32)), np.float32)

    def _split(self, state: ModelState) -> tuple[ModelState, np.ndarray]:
        missing = [key for key in (RECENT_ACTIONS, PROPRIO) if key not in state]
        if missing:
            raise KeyError(f"state: expected {' and '.join(map(repr, missing))} entries (a StateSpaceRuntime."
                           f"initial_state()), got keys {sorted(state)}")
        recent = check_array(f"state[{RECENT_ACTIONS!r}]", state[RECENT_ACTIONS],
                             (None, self.dynamics.history, self.action_dim), np.float32)
        check_array(f"state[{PROPRIO!r}]", state[PROPRIO], (len(recent), len(self.proprio_dims)), np.float32)
        return {key: value for key, value in state.items() if key not in (RECENT_ACTIONS, PROPRIO)}, recent
