"""Cross-entropy method: refit a diagonal Gaussian to the elites each iteration.

Warm starting is the controller's job: it shifts its previous plan and passes it as
`init_mean`. The plan returned is the final elite mean (smoother than the best
sample, and what PlaNet executes).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hvp.contracts import CostFn, OptimizerResult
from hvp.planners.base import ELITE_PRESETS, Clock, GaussianConfig, check_init_mean, elite_indices, evaluate, \
    horizon_and_knots, sample_gaussian, to_plans, with_presets


@dataclasses.dataclass(frozen=True)
class CEMConfig(GaussianConfig):
    """population, iterations, action_repeat, elites, init_std, min_std: see GaussianConfig."""


with_presets(CEMConfig, ELITE_PRESETS)


class CEM:
    def __init__(self, config: CEMConfig | None = None) -> None:
        self.config = config or CEMConfig()

    def optimize(self, cost_fn: CostFn, init_mean: np.ndarray, rng: np.random.Generator,
                 carry: Mapping[str, np.ndarray] | None = None, deadline: float | None = None) -> OptimizerResult:
        """init_mean float32 [H, A] -> elite mean float32 [H, A]; cost = mean elite cost. `carry` is unused."""
        cfg = self.config
        horizon, mean = horizon_and_knots(check_init_mean(init_mean), cfg.action_repeat)
        std = np.full_like(mean, cfg.init_std)
        elite_cost, clock, iteration = np.inf, Clock(deadline), 0
        while iteration < cfg.iterations and not (iteration and clock.out_of_time()):
            # sample
            samples = sample_gaussian(rng, mean, std, cfg.population)
            # evaluate
            costs = evaluate(cost_fn, samples, cfg.action_repeat, horizon)
            # elites
            top = elite_indices(costs, cfg.elites)
            elites = samples[top]
            # update
            mean = elites.mean(axis=0)
            std = np.maximum(elites.std(axis=0), cfg.min_std)
            elite_cost = float(costs[top].mean())
            iteration += 1
            clock.lap()
        return OptimizerResult(to_plans(mean, cfg.action_repeat, horizon), elite_cost, {}, iteration)
