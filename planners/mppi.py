"""MPPI (model predictive path integral), iterated as in TD-MPC2: sample around a
Gaussian, weight (elite) samples by exp(-cost / temperature), move mean and std to the
weighted moments, clamp the std. The plan returned is the final weighted mean.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hvp.config import require
from hvp.contracts import CostFn, OptimizerResult
from hvp.planners.base import ELITE_PRESETS, Clock, OptimizerConfig, check_init_mean, elite_indices, evaluate, \
    horizon_and_knots, sample_gaussian, to_plans, with_presets


@dataclasses.dataclass(frozen=True)
class MPPIConfig(OptimizerConfig):
    elites: int = 0  # samples that get a weight, lowest cost first; 0 = the whole population
    temperature: float = 0.5  # in cost units: a sample this much worse than the best weighs 1/e as much
    init_std: float = 0.5  # std of the first iteration's Gaussian
    min_std: float = 0.05  # std clamp, low
    max_std: float = 2.0  # std clamp, high

    def validate(self) -> None:
        super().validate()
        require(0 <= self.elites <= self.population, "elites must be in [0, population={}] (got {}); 0 = all",
                self.population, self.elites)
        require(self.temperature > 0, "temperature must be > 0 (got {})", self.temperature)
        require(0 <= self.min_std <= self.init_std <= self.max_std,
                "need 0 <= min_std <= init_std <= max_std (got {}, {}, {})",
                self.min_std, self.init_std, self.max_std)


with_presets(MPPIConfig, ELITE_PRESETS)


def softmax_weights(costs: np.ndarray, temperature: float) -> np.ndarray:
    """costs float64 [N] (may hold +inf) -> weights float64 [N], >= 0, summing to 1.

    Shifted by the lowest cost so exp() cannot overflow; +inf gets weight 0 unless all
    costs are +inf, then the weights are uniform (nothing to prefer).
    """
    finite = np.isfinite(costs)
    if not finite.any():
        return np.full(len(costs), 1.0 / len(costs))
    scores = np.where(finite, np.exp(-(costs - costs[finite].min()) / temperature), 0.0)
    return scores / scores.sum()


class MPPI:
    def __init__(self, config: MPPIConfig | None = None) -> None:
        self.config = config or MPPIConfig()

    def optimize(self, cost_fn: CostFn, init_mean: np.ndarray, rng: np.random.Generator,
                 carry: Mapping[str, np.ndarray] | None = None, deadline: float | None = None) -> OptimizerResult:
        """init_mean float32 [H, A] -> weighted mean plan float32 [H, A]; cost = weighted mean cost. `carry` unused."""
        cfg = self.config
        horizon, mean = horizon_and_knots(check_init_mean(init_mean), cfg.action_repeat)
        std = np.full_like(mean, cfg.init_std)
        weighted_cost, clock, iteration = np.inf, Clock(deadline), 0
        while iteration < cfg.iterations and not (iteration and clock.out_of_time()):
            # sample
            samples = sample_gaussian(rng, mean, std, cfg.population)
            # evaluate
            costs = evaluate(cost_fn, samples, cfg.action_repeat, horizon)
            # elites and their weights
            top = elite_indices(costs, cfg.elites or cfg.population)
            weights = softmax_weights(costs[top], cfg.temperature)
            # update: weighted moments over [K, A]
            mean = np.einsum("n,nka->ka", weights, samples[top]).astype(np.float32)
            spread = np.einsum("n,nka->ka", weights, (samples[top] - mean) ** 2)
            std = np.clip(np.sqrt(spread), cfg.min_std, cfg.max_std).astype(np.float32)
            finite = np.isfinite(costs[top])
            weighted_cost = float(weights[finite] @ costs[top][finite]) if finite.any() else np.inf
            iteration += 1
            clock.lap()
        return OptimizerResult(to_plans(mean, cfg.action_repeat, horizon), weighted_cost, {}, iteration)
