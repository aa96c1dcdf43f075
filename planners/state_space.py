"""Imagining in the task's state: a ModelRuntime whose latents are states read out of the world model's beliefs.

The world model still does the seeing: every image is filtered into its belief, and a
StateReadout reads the task's state (for push: pusher and block positions) out of that belief
and out of the goal image's encoding. Plans are then rolled out by a StateDynamics model of
that state instead of by the latent prior, whose contact is wrong where push needs it right
(docs/planning.md). Any planner, cost or controller written against ModelRuntime works on it;
the cost to use is the task's own, StateCost(None, task.state_cost).

Its model state is the world model's belief plus the executed actions the dynamics conditions
on, under RECENT_ACTIONS.
"""
from __future__ import annotations

import numpy as np

from hvp.contracts import ModelRuntime, ModelState, StateDynamics, StateReadout, check_array

RECENT_ACTIONS = "recent_actions"  # float32 [B, K, A], newest first


class StateSpaceRuntime:
    """hvp.contracts.ModelRuntime over (world model runtime, its state readout, a state dynamics model)."""

    def __init__(self, runtime: ModelRuntime, readout: StateReadout, dynamics: StateDynamics) -> None:
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
        self.runtime, self.readout, self.dynamics = runtime, readout, dynamics
        self.image_shape, self.action_dim = runtime.image_shape, runtime.action_dim
        self.latent_dim = dynamics.state_dim
        self.task = readout_task

    def initial_state(self, batch: int) -> ModelState:
        recent = np.zeros((batch, self.dynamics.history, self.action_dim), np.float32)
        return {**self.runtime.initial_state(batch), RECENT_ACTIONS: recent}

    def encode(self, images: np.ndarray) -> np.ndarray:
        return self._read(self.runtime.encode(images))

    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        belief, recent = self._split(state)
        belief = self.runtime.observe(belief, images, actions)
        newest_first = np.concatenate([actions[:, None].astype(np.float32), recent[:, :-1]], axis=1)
        recent = newest_first[:, :self.dynamics.history]
        return {**belief, RECENT_ACTIONS: recent}

    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        belief, recent = self._split(state)
        states = self._read(self.runtime.latent(belief))
        if len(states) == 1 and len(actions) > 1:  # a batch-1 belief plans a whole population
            states, recent = np.repeat(states, len(actions), 0), np.repeat(recent, len(actions), 0)
        return self.dynamics.rollout(states, recent, actions).astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        raise TypeError("StateSpaceRuntime.decode: its latents are task states, which have no image: plan with a "
                        "state cost (StateCost(None, task.state_cost)), not a pixel cost")

    def latent(self, state: ModelState) -> np.ndarray:
        return self._read(self.runtime.latent(self._split(state)[0]))

    def _read(self, latents: np.ndarray) -> np.ndarray:
        return np.asarray(self.readout.states(latents.astype(np.float32)), np.float32)

    def _split(self, state: ModelState) -> tuple[ModelState, np.ndarray]:
        if RECENT_ACTIONS not in state:
            raise KeyError(f"state: expected a {RECENT_ACTIONS!r} entry (a StateSpaceRuntime.initial_state()), "
                           f"got keys {sorted(state)}")
        recent = check_array(f"state[{RECENT_ACTIONS!r}]", state[RECENT_ACTIONS],
                             (None, self.dynamics.history, self.action_dim), np.float32)
        return {key: value for key, value in state.items() if key != RECENT_ACTIONS}, recent
