"""iCEM (Pinneri et al., CoRL 2020): CEM with colored noise, a shrinking population,
elites kept within and across calls, and momentum on the Gaussian's parameters.

Across calls the elites travel in `carry["elites"]` (float32 [k, H, A], plans in
control steps); the controller shifts them by the steps it executed, like the mean
(see hvp.planners.mpc.shift_carry). The plan returned is the best sequence evaluated.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hvp.config import require
from hvp.contracts import CostFn, OptimizerResult, check_array
from hvp.planners.base import ACTION_HIGH, ACTION_LOW, ELITE_PRESETS, Best, Clock, GaussianConfig, \
    check_init_mean, elite_indices, evaluate, horizon_and_knots, to_knots, to_plans, with_presets
from hvp.planners.noise import colored_noise


@dataclasses.dataclass(frozen=True)
class ICEMConfig(GaussianConfig):
    noise_beta: float = 2.0  # power-law exponent of the noise: 0 white, 2 random-walk-like
    population_decay: float = 1.25  # iteration i samples population / decay**i (at least 2 * elites)
    keep_fraction: float = 0.3  # share of elites carried to the next iteration and the next call
    momentum: float = 0.1  # weight of the old mean/std in each update

    def validate(self) -> None:
        super().validate()
        require(self.noise_beta >= 0, "noise_beta must be >= 0 (got {})", self.noise_beta)
        require(self.population_decay >= 1, "population_decay must be >= 1 (got {})", self.population_decay)
        require(0 <= self.keep_fraction <= 1, "keep_fraction must be in [0, 1] (got {})", self.keep_fraction)
        require(0 <= self.momentum < 1, "momentum must be in [0, 1) (got {})", self.momentum)


with_presets(ICEMConfig, ELITE_PRESETS)


class ICEM:
    def __init__(self, config: ICEMConfig | None = None) -> None:
        self.config = config or ICEMConfig()

    def optimize(self, cost_fn: CostFn, init_mean: np.ndarray, rng: np.random.Generator,
                 carry: Mapping[str, np.ndarray] | None = None, deadline: float | None = None) -> OptimizerResult:
        """init_mean float32 [H, A]; carry {"elites": float32 [k, H, A]} from the previous call (shifted) or None.

        -> best evaluated plan float32 [H, A]; carry {"elites": float32 [k, H, A]}.
        """
        cfg = self.config
        horizon, mean = horizon_and_knots(check_init_mean(init_mean), cfg.action_repeat)
        std = np.full_like(mean, cfg.init_std)
        kept = self._carried_elites(carry, init_mean.shape)
        keep = int(round(cfg.keep_fraction * cfg.elites))
        best, clock, iteration, elites = Best(mean), Clock(deadline), 0, kept
        while iteration < cfg.iterations and not (iteration and clock.out_of_time()):
            # sample: colored noise around the mean, plus kept elites, plus the mean itself at the end
            count = max(int(cfg.population * cfg.population_decay ** -iteration), 2 * cfg.elites)
            noise = colored_noise(rng, cfg.noise_beta, count, *mean.shape)
            parts = [np.clip(mean + std * noise, ACTION_LOW, ACTION_HIGH), elites[:keep]]
            if iteration == cfg.iterations - 1:
                parts.append(mean[None])
            samples = np.concatenate(parts)
            # evaluate
            costs = evaluate(cost_fn, samples, cfg.action_repeat, horizon)
            best = best.update(samples, costs)
            # elites
            elites = samples[elite_indices(costs, cfg.elites)]
            # update, with momentum
            mean = cfg.momentum * mean + (1 - cfg.momentum) * elites.mean(axis=0)
            std = np.maximum(cfg.momentum * std + (1 - cfg.momentum) * elites.std(axis=0), cfg.min_std)
            iteration += 1
            clock.lap()
        carried = to_plans(elites[:keep], cfg.action_repeat, horizon)
        return OptimizerResult(to_plans(best.knots, cfg.action_repeat, horizon), best.cost,
                               {"elites": carried}, iteration)

    def _carried_elites(self, carry: Mapping[str, np.ndarray] | None, plan_shape: tuple[int, int]) -> np.ndarray:
        """carry["elites"] float32 [k, H, A] -> knots float32 [k, K, A] (empty when nothing is carried)."""
        if not carry or "elites" not in carry:
            return to_knots(np.zeros((0, *plan_shape), np.float32), self.config.action_repeat)
        elites = check_array('carry["elites"]', carry["elites"], (None, *plan_shape), np.float32)
        return to_knots(np.clip(elites, ACTION_LOW, ACTION_HIGH), self.config.action_repeat)
