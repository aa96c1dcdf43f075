"""What every trajectory optimizer shares: its config fields, input checks, cost hygiene,
action repeat, the deadline clock and best-so-far bookkeeping.

Optimizers search over "knots" float32 [N, K, A] with K = ceil(H / action_repeat);
each knot is held for `action_repeat` control steps, so the cost function always
sees full plans float32 [N, H, A] and the returned plan is [H, A].
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Mapping

import numpy as np

from hvp.config import Config, require
from hvp.contracts import CostFn, check_array

ACTION_LOW, ACTION_HIGH = -1.0, 1.0

# Sizes per preset; optimizers add their own fields on top. cpu follows REFERENCES.md.
BASE_PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(population=32, iterations=2),
    "cpu": dict(population=128, iterations=3),
    "gpu": dict(population=512, iterations=6),
}


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(Config):
    """Fields common to all optimizers."""

    population: int = 128  # N: action sequences evaluated per iteration (one cost call)
    iterations: int = 3  # I: cost calls per optimize()
    action_repeat: int = 1  # each optimized action is held this many control steps

    def validate(self) -> None:
        require(self.population >= 2, "population must be >= 2 (got {})", self.population)
        require(self.iterations >= 1, "iterations must be >= 1 (got {})", self.iterations)
        require(self.action_repeat >= 1, "action_repeat must be >= 1 (got {})", self.action_repeat)


@dataclasses.dataclass(frozen=True)
class GaussianConfig(OptimizerConfig):
    """Fields of the optimizers that sample around a diagonal Gaussian refit to elites."""

    elites: int = 16  # samples the Gaussian is refit to
    init_std: float = 0.5  # std of the first iteration's Gaussian
    min_std: float = 0.05  # std floor: keeps exploring after the elites agree

    def validate(self) -> None:
        super().validate()
        require(1 <= self.elites <= self.population, "elites must be in [1, population={}] (got {})",
                self.population, self.elites)
        require(self.init_std > 0, "init_std must be > 0 (got {})", self.init_std)
        require(0 <= self.min_std <= self.init_std, "min_std must be in [0, init_std={}] (got {})",
                self.init_std, self.min_std)


ELITE_PRESETS = {"debug": dict(elites=8), "cpu": dict(elites=16), "gpu": dict(elites=64)}


def with_presets(cls: type[OptimizerConfig], own: Mapping[str, Mapping[str, Any]]) -> type[OptimizerConfig]:
    """Attach debug/cpu/gpu presets: the shared sizes merged with the optimizer's own fields."""
    cls.PRESETS = {name: {**BASE_PRESETS[name], **own.get(name, {})} for name in BASE_PRESETS}
    return cls


def check_init_mean(init_mean: Any) -> np.ndarray:
    """init_mean float32 [H, A] -> the same, clipped into the action bounds."""
    if isinstance(init_mean, np.ndarray) and init_mean.dtype == np.float64:
        init_mean = init_mean.astype(np.float32)
    check_array("init_mean", init_mean, (None, None), np.float32)
    if init_mean.shape[0] < 1 or init_mean.shape[1] < 1:
        raise ValueError(f"init_mean: expected shape (H >= 1, A >= 1), got {init_mean.shape}")
    if not np.all(np.isfinite(init_mean)):
        raise ValueError("init_mean: expected finite values, got NaN or inf")
    return np.clip(init_mean, ACTION_LOW, ACTION_HIGH)


def to_knots(plan: np.ndarray, action_repeat: int) -> np.ndarray:
    """plans float32 [..., H, A] -> knots float32 [..., K, A]: the first action of each held block."""
    return np.ascontiguousarray(plan[..., ::action_repeat, :])


def to_plans(knots: np.ndarray, action_repeat: int, horizon: int) -> np.ndarray:
    """knots float32 [..., K, A] -> plans float32 [..., H, A], each knot held action_repeat steps."""
    if action_repeat == 1:
        return knots
    return np.repeat(knots, action_repeat, axis=-2)[..., :horizon, :]


def evaluate(cost_fn: CostFn, knots: np.ndarray, action_repeat: int, horizon: int) -> np.ndarray:
    """One batched cost call: knots float32 [N, K, A] -> costs float64 [N], NaN and inf as +inf."""
    plans = to_plans(knots.astype(np.float32, copy=False), action_repeat, horizon)
    costs = np.asarray(cost_fn(plans), dtype=np.float64)
    if costs.shape != (len(knots),):
        raise ValueError(f"cost_fn: expected costs of shape ({len(knots)},) for {len(knots)} plans, got {costs.shape}")
    return np.where(np.isfinite(costs), costs, np.inf)


def sample_gaussian(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray, count: int) -> np.ndarray:
    """mean, std float32 [K, A] -> count samples float32 [count, K, A], clipped to the bounds."""
    noise = rng.standard_normal((count, *mean.shape), dtype=np.float32)
    return np.clip(mean + std * noise, ACTION_LOW, ACTION_HIGH)


def elite_indices(costs: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` lowest costs, best first (+inf sorts last)."""
    count = min(count, len(costs))
    top = np.argpartition(costs, count - 1)[:count]
    return top[np.argsort(costs[top], kind="stable")]


class Clock:
    """Decides whether one more iteration fits before a time.perf_counter() deadline.

    It predicts with the slowest iteration seen so far, so a deadline is overrun by at
    most the variation of one iteration, not by a whole one.
    """

    def __init__(self, deadline: float | None) -> None:
        if deadline is not None and not isinstance(deadline, (int, float)):
            raise TypeError(f"deadline: expected a time.perf_counter() value or None, got {type(deadline).__name__}")
        self.deadline = deadline
        self.started = time.perf_counter()
        self.slowest = 0.0

    def lap(self) -> None:
        now = time.perf_counter()
        self.slowest = max(self.slowest, now - self.started)
        self.started = now

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() + self.slowest > self.deadline


@dataclasses.dataclass(frozen=True)
class Best:
    """The lowest-cost knots seen so far in one optimize() call."""

    knots: np.ndarray  # float32 [K, A]
    cost: float = math.inf

    def update(self, samples: np.ndarray, costs: np.ndarray) -> "Best":
        """samples float32 [N, K, A], costs float64 [N] -> the better of self and the batch's best."""
        index = int(np.argmin(costs))
        if costs[index] < self.cost:
            return Best(samples[index].copy(), float(costs[index]))
        return self


def horizon_and_knots(init_mean: np.ndarray, action_repeat: int) -> tuple[int, np.ndarray]:
    """init_mean float32 [H, A] -> (H, knots float32 [K, A])."""
    return init_mean.shape[0], to_knots(init_mean, action_repeat)
