"""CMA-ES through pycma (`cma`), batched: one ask() of the whole population, one cost
call, one tell() per generation.

pycma has no way to shift a running search in time, so every call builds a fresh ES
from `init_mean` (the controller's shifted previous plan). Sampling draws from the
caller's np.random.Generator (pycma's `randn` option), never numpy's global state.

Bounds: candidates are clipped to [-1, 1] for the cost call and told to the ES with
the squared distance to the box added, so a candidate outside ranks below its clipped
twin and the search drifts back inside. pycma's own `bounds` option does the same job
with a Python loop per candidate (measured: about half the optimizer's time at N=128).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hvp.config import require
from hvp.contracts import CostFn, OptimizerResult
from hvp.planners.base import ACTION_HIGH, ACTION_LOW, Best, Clock, OptimizerConfig, check_init_mean, evaluate, \
    horizon_and_knots, to_plans, with_presets


@dataclasses.dataclass(frozen=True)
class CMAESConfig(OptimizerConfig):
    """`population` is pycma's popsize (its default 4 + 3 ln(n) is too small for noisy costs)."""

    init_std: float = 0.5  # sigma0: initial step size in action units

    def validate(self) -> None:
        super().validate()
        require(self.init_std > 0, "init_std must be > 0 (got {})", self.init_std)


with_presets(CMAESConfig, {})

# A finite stand-in for +inf: pycma's ranking needs comparable numbers.
INFEASIBLE_COST = 1e300


class CMAES:
    def __init__(self, config: CMAESConfig | None = None) -> None:
        self.config = config or CMAESConfig()

    def optimize(self, cost_fn: CostFn, init_mean: np.ndarray, rng: np.random.Generator,
                 carry: Mapping[str, np.ndarray] | None = None, deadline: float | None = None) -> OptimizerResult:
        """init_mean float32 [H, A] -> best evaluated plan float32 [H, A]. `carry` is unused."""
        import cma  # only users of this optimizer pay for the import

        cfg = self.config
        horizon, mean = horizon_and_knots(check_init_mean(init_mean), cfg.action_repeat)
        options = {
            "popsize": cfg.population, "maxiter": cfg.iterations,
            "randn": lambda *shape: rng.standard_normal(shape), "seed": np.nan,  # nan: never seed numpy globally
            "verbose": -9, "verb_log": 0, "verb_disp": 0, "tolfun": 0, "tolx": 0, "tolflatfitness": cfg.iterations,
        }
        es = cma.CMAEvolutionStrategy(mean.ravel().astype(np.float64), cfg.init_std, options)
        best, clock, iteration = Best(mean), Clock(deadline), 0
        while iteration < cfg.iterations and not (iteration and clock.out_of_time()):
            # sample
            candidates = np.asarray(es.ask())  # [N, K * A], unbounded
            samples = np.clip(candidates, ACTION_LOW, ACTION_HIGH).astype(np.float32).reshape(-1, *mean.shape)
            # evaluate the clipped samples
            costs = evaluate(cost_fn, samples, cfg.action_repeat, horizon)
            best = best.update(samples, costs)
            # update the search distribution, penalizing candidates outside the box
            outside = np.sum((candidates - samples.reshape(len(candidates), -1)) ** 2, axis=1)
            es.tell(list(candidates), np.minimum(costs + outside, INFEASIBLE_COST).tolist())
            iteration += 1
            clock.lap()
        return OptimizerResult(to_plans(best.knots, cfg.action_repeat, horizon), best.cost, {}, iteration)
