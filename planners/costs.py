"""Planning costs: functions of an imagined rollout, composable by weighted sum.

A cost term maps (latents float32 [N, H, D], actions float32 [N, H, A], target
float32 [D]) -> float64 [N]. The target is a latent (the goal's encoding or a subgoal
from a hierarchical planner), so every term works toward subgoals that exist only in
latent space. Terms are frozen: all state arrives as arguments.

Terms that can also say how their value changes have gradient(latents, actions, target)
-> (float32 [N, H, D], float32 [N, H, A]): the derivatives of each sample's cost, for
gradient plan refinement (planners/gradient.py). PixelMSE has none (decode() is numpy).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from hvp.contracts import DifferentiableDistance, Distance, ModelRuntime, StateReadout

STEP_WEIGHTINGS = ("last", "all")


@runtime_checkable
class CostTerm(Protocol):
    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        """latents float32 [N, H, D], actions float32 [N, H, A], target float32 [D] -> float64 [N]."""


def step_weights(horizon: int, weighting: str, discount: float) -> np.ndarray:
    """-> float64 [H] summing to 1: only the last step, or all steps with later ones weighing more.

    With "all", step t weighs discount**(H - 1 - t): discount 1 is uniform, smaller
    values forgive the early steps of a path that has to start somewhere.
    """
    if weighting not in STEP_WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {STEP_WEIGHTINGS}, got {weighting!r}")
    if not 0 < discount <= 1:
        raise ValueError(f"discount: expected a value in (0, 1], got {discount}")
    if weighting == "last":
        weights = np.zeros(horizon)
        weights[-1] = 1.0
        return weights
    weights = discount ** np.arange(horizon - 1, -1, -1, dtype=np.float64)
    return weights / weights.sum()


def weighted_steps(latents: np.ndarray, actions: np.ndarray, target: np.ndarray, weighting: str,
                   discount: float) -> tuple[np.ndarray, np.ndarray]:
    """Check a rollout; -> (indices of the steps with weight, their weights float64), so only those are scored."""
    check_rollout(latents, actions, target)
    weights = step_weights(latents.shape[1], weighting, discount)
    steps = np.flatnonzero(weights)
    return steps, weights[steps]


def check_rollout(latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> None:
    if latents.ndim != 3 or actions.ndim != 3 or latents.shape[:2] != actions.shape[:2]:
        raise ValueError(f"latents, actions: expected [N, H, D] and [N, H, A] with equal N, H; "
                         f"got {latents.shape} and {actions.shape}")
    if target.shape != latents.shape[-1:]:
        raise ValueError(f"target: expected shape ({latents.shape[-1]},) like the latents' D, got {target.shape}")


@dataclasses.dataclass(frozen=True)
class LatentDistance:
    """Squared Euclidean distance between imagined latents and the target latent."""

    weighting: str = "last"  # "last": final step only (DINO-WM, HVF); "all": every step, weighted
    discount: float = 1.0  # for "all": step t weighs discount**(H-1-t)

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        check_rollout(latents, actions, target)
        weights = step_weights(latents.shape[1], self.weighting, self.discount)
        squared = np.sum((latents - target) ** 2, axis=-1, dtype=np.float64)  # [N, H]
        return squared @ weights

    def gradient(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_rollout(latents, actions, target)
        weights = step_weights(latents.shape[1], self.weighting, self.discount)
        return ((2 * weights[:, None] * (latents - target)).astype(np.float32),
                np.zeros_like(actions, dtype=np.float32))


@dataclasses.dataclass(frozen=True)
class PixelMSE:
    """Mean squared error between decoded imagined frames and the decoded target, pixels in [0, 1].

    Only the weighted steps are decoded, in one batched decode() call.
    """

    runtime: ModelRuntime
    weighting: str = "last"
    discount: float = 1.0

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        steps, weights = weighted_steps(latents, actions, target, self.weighting, self.discount)
        frames = self.runtime.decode(latents[:, steps])  # uint8 [N, h', h, w, 3] for h' weighted steps
        goal = self.runtime.decode(target[None])[0]  # uint8 [h, w, 3]
        error = (frames.astype(np.float32) - goal.astype(np.float32)) / 255.0
        mse = np.mean(error**2, axis=(-3, -2, -1), dtype=np.float64)  # [N, h']
        return mse @ weights


@dataclasses.dataclass(frozen=True)
class TemporalDistance:
    """Predicted control steps from imagined latents to the target, from any Distance model.

    One batched steps() call over all weighted (sample, step) pairs.
    """

    distance: Distance
    weighting: str = "last"
    discount: float = 1.0

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        steps, weights = weighted_steps(latents, actions, target, self.weighting, self.discount)
        population, dim = latents.shape[0], latents.shape[-1]
        flat = np.ascontiguousarray(latents[:, steps].reshape(-1, dim), dtype=np.float32)
        predicted = np.asarray(self.distance.steps(flat, target[None].astype(np.float32)), dtype=np.float64)
        if predicted.shape != (len(flat),):
            raise ValueError(f"distance.steps: expected shape ({len(flat)},), got {predicted.shape}")
        return predicted.reshape(population, len(steps)) @ weights

    def gradient(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(self.distance, DifferentiableDistance):
            raise TypeError(f"TemporalDistance.gradient: the distance ({type(self.distance).__name__}) has no "
                            "steps_vjp(); use the torch model (hvp.models.temporal_distance) for gradients")
        steps, weights = weighted_steps(latents, actions, target, self.weighting, self.discount)
        population, dim = latents.shape[0], latents.shape[-1]
        flat = np.ascontiguousarray(latents[:, steps].reshape(-1, dim), dtype=np.float32)
        _, vjp = self.distance.steps_vjp(flat, target[None].astype(np.float32))
        latent_grads = np.zeros(latents.shape, np.float32)
        latent_grads[:, steps] = vjp(np.tile(weights, population).astype(np.float32)).reshape(population, len(steps), dim)
        return latent_grads, np.zeros_like(actions, dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class StateCost:
    """A task's cost-to-go between true states, read out of the imagined latents and the target latent.

    `state_cost(states float [N, h', S], goal_state float [S]) -> float [N, h']` is the task's own
    (hvp.sim tasks' state_cost); the readout estimates both sides, so the planner still sees only
    latents. One batched states() call over all weighted (sample, step) pairs plus the target. With readout None
    the latents are task states already (planners/state_space.StateSpaceRuntime).
    """

    readout: StateReadout | None
    state_cost: Callable[[np.ndarray, np.ndarray], np.ndarray]
    weighting: str = "all"
    discount: float = 1.0

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        steps, weights = weighted_steps(latents, actions, target, self.weighting, self.discount)
        population, dim = latents.shape[0], latents.shape[-1]
        flat = np.concatenate([latents[:, steps].reshape(-1, dim), target[None]]).astype(np.float32)
        states = np.asarray(flat if self.readout is None else self.readout.states(flat), dtype=np.float64)
        if states.ndim != 2 or len(states) != len(flat):
            raise ValueError(f"readout.states: expected shape ({len(flat)}, S), got {states.shape}")
        costs = np.asarray(self.state_cost(states[:-1].reshape(population, len(steps), -1), states[-1]), np.float64)
        if costs.shape != (population, len(steps)):
            raise ValueError(f"state_cost: expected shape ({population}, {len(steps)}), got {costs.shape}")
        return costs @ weights


@dataclasses.dataclass(frozen=True)
class ActionMagnitude:
    """Mean squared action norm per step: prefers gentle plans when the goal allows."""

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.mean(np.sum(actions**2, axis=-1, dtype=np.float64), axis=-1)

    def gradient(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros_like(latents, dtype=np.float32), (2 * actions / actions.shape[1]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ActionSmoothness:
    """Mean squared change between consecutive actions: penalizes jerky plans."""

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        if actions.shape[1] < 2:
            return np.zeros(actions.shape[0])
        return np.mean(np.sum(np.diff(actions, axis=1) ** 2, axis=-1, dtype=np.float64), axis=-1)

    def gradient(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action_grads = np.zeros_like(actions, dtype=np.float32)
        if actions.shape[1] >= 2:
            change = 2 * np.diff(actions, axis=1) / (actions.shape[1] - 1)  # d cost / d (a[t+1] - a[t])
            action_grads[:, 1:] += change
            action_grads[:, :-1] -= change
        return np.zeros_like(latents, dtype=np.float32), action_grads


@dataclasses.dataclass(frozen=True)
class WeightedSum:
    """sum_i weight_i * term_i: e.g. WeightedSum(((1.0, LatentDistance()), (0.01, ActionMagnitude())))."""

    terms: Sequence[tuple[float, CostTerm]]

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("terms: expected at least one (weight, cost term) pair, got none")
        for weight, term in self.terms:
            if not np.isfinite(weight) or not callable(term):
                raise ValueError(f"terms: expected (finite weight, callable cost term) pairs, "
                                 f"got ({weight!r}, {term!r})")

    def __call__(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
        return sum(weight * term(latents, actions, target) for weight, term in self.terms)

    def gradient(self, latents: np.ndarray, actions: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [(weight, term.gradient(latents, actions, target)) for weight, term in self.terms]
        return (sum(weight * latent_grads for weight, (latent_grads, _) in parts).astype(np.float32),
                sum(weight * action_grads for weight, (_, action_grads) in parts).astype(np.float32))


def differentiable(cost: CostTerm) -> bool:
    """Whether gradient() works on `cost`: every term of a WeightedSum, a TemporalDistance only over a
    DifferentiableDistance (the torch model, not the exported one)."""
    if isinstance(cost, WeightedSum):
        return all(differentiable(term) for _, term in cost.terms)
    if isinstance(cost, TemporalDistance):
        return isinstance(cost.distance, DifferentiableDistance)
    return callable(getattr(cost, "gradient", None))
