"""Random shooting: uniform action sequences, keep the best. The baseline every other
optimizer must beat at the same sample budget."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hvp.contracts import CostFn, OptimizerResult
from hvp.planners.base import ACTION_HIGH, ACTION_LOW, Best, Clock, OptimizerConfig, check_init_mean, evaluate, \
    horizon_and_knots, to_plans, with_presets


@dataclasses.dataclass(frozen=True)
class RandomShootingConfig(OptimizerConfig):
    """Only the shared sizes: N uniform samples per iteration, I iterations."""


with_presets(RandomShootingConfig, {})


class RandomShooting:
    """Samples uniformly in [-1, 1]; the warm-start mean is one of the candidates."""

    def __init__(self, config: RandomShootingConfig | None = None) -> None:
        self.config = config or RandomShootingConfig()

    def optimize(self, cost_fn: CostFn, init_mean: np.ndarray, rng: np.random.Generator,
                 carry: Mapping[str, np.ndarray] | None = None, deadline: float | None = None) -> OptimizerResult:
        """init_mean float32 [H, A] -> best sampled plan float32 [H, A]. `carry` is unused."""
        cfg = self.config
        horizon, mean = horizon_and_knots(check_init_mean(init_mean), cfg.action_repeat)
        best, clock, iteration = Best(mean), Clock(deadline), 0
        while iteration < cfg.iterations and not (iteration and clock.out_of_time()):
            # sample
            samples = rng.uniform(ACTION_LOW, ACTION_HIGH, (cfg.population, *mean.shape)).astype(np.float32)
            if iteration == 0:
                samples[0] = mean
            # evaluate
            best = best.update(samples, evaluate(cost_fn, samples, cfg.action_repeat, horizon))
            iteration += 1
            clock.lap()
        return OptimizerResult(to_plans(best.knots, cfg.action_repeat, horizon), best.cost, {}, iteration)
