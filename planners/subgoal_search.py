"""Subgoal search: optimize a subgoal generator's codes so the chain start -> s1 .. sK -> goal is reachable.

The codes float32 [K, C] are what an Optimizer searches (they pose as a plan [H=K, A=C];
optimizers keep plans in [-1, 1], so codes = code_scale * plan, and a scale of 2 covers
+-2 standard deviations of the generator's N(0, I) prior). A chain is scored by the
predicted steps of each segment from a Distance; HVF takes the MAX over segments (the
hardest segment decides whether the low level gets through), "sum" prefers short chains.

    search = SubgoalSearch(generator, distance, SubgoalSearchConfig(subgoals=3))
    chain = search.search(start, goal, rng)          # start, goal float32 [D] -> SubgoalChain
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from hvp.config import Config, require
from hvp.contracts import Distance, Optimizer, SubgoalGenerator, check_array

CHAIN_COSTS = ("max", "sum")


@dataclasses.dataclass(frozen=True)
class SubgoalSearchConfig(Config):
    subgoals: int = 3  # K: 1, 3, 7 (a midpoint tree)
    population: int = 200  # codes sampled per iteration (HVF: 200)
    elites: int = 40  # HVF: 40
    iterations: int = 5  # HVF: 5
    chain_cost: str = "max"  # "max" over segments (HVF) or "sum"
    code_scale: float = 2.0  # codes = code_scale * optimizer plan in [-1, 1]
    init_std: float = 0.5  # first iteration's std of the plan (codes std = code_scale * init_std)

    def validate(self) -> None:
        require(self.subgoals >= 1 and not self.subgoals & (self.subgoals + 1),
                "SubgoalSearchConfig.subgoals must be 2**L - 1 (1, 3, 7, ...) (got {})", self.subgoals)
        require(1 <= self.elites <= self.population, "SubgoalSearchConfig.elites must be in [1, population={}] "
                "(got {})", self.population, self.elites)
        require(self.iterations >= 1, "SubgoalSearchConfig.iterations must be >= 1 (got {})", self.iterations)
        require(self.chain_cost in CHAIN_COSTS, "SubgoalSearchConfig.chain_cost must be one of {} (got {!r})",
                CHAIN_COSTS, self.chain_cost)
        require(self.code_scale > 0 and self.init_std > 0,
                "SubgoalSearchConfig.code_scale and init_std must be > 0 (got {}, {})", self.code_scale, self.init_std)


SubgoalSearchConfig.PRESETS = {"debug": dict(population=32, elites=8, iterations=2), "cpu": {}, "gpu": {}}


@dataclasses.dataclass(frozen=True)
class SubgoalChain:
    """A searched chain of subgoals, in time order."""

    subgoals: np.ndarray  # float32 [K, D]
    codes: np.ndarray  # float32 [K, C]
    segment_steps: np.ndarray  # float32 [K + 1]: predicted steps start -> s1, ..., sK -> goal
    cost: float  # chain cost (max or sum of segment_steps)
    seconds: float  # wall time of the search


def segment_steps(distance: Distance, start: np.ndarray, subgoals: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """start, goal float32 [D]; subgoals float32 [N, K, D] -> predicted steps per segment float32 [N, K + 1],
    all N * (K + 1) segments in one steps() call."""
    population, count, dim = subgoals.shape
    origins = np.concatenate([np.broadcast_to(start, (population, 1, dim)), subgoals], 1)
    targets = np.concatenate([subgoals, np.broadcast_to(goal, (population, 1, dim))], 1)
    steps = np.asarray(distance.steps(np.ascontiguousarray(origins.reshape(-1, dim), np.float32),
                                      np.ascontiguousarray(targets.reshape(-1, dim), np.float32)))
    if steps.shape != (population * (count + 1),):
        raise ValueError(f"distance.steps: expected shape ({population * (count + 1)},), got {steps.shape}")
    return steps.reshape(population, count + 1).astype(np.float32)


def chain_cost(segments: np.ndarray, how: str) -> np.ndarray:
    """segments float [N, K + 1] -> float64 [N]: max (HVF) or sum over segments; NaN stays NaN (= +inf)."""
    if how not in CHAIN_COSTS:
        raise ValueError(f"chain_cost: expected one of {CHAIN_COSTS}, got {how!r}")
    return (segments.max(-1) if how == "max" else segments.sum(-1)).astype(np.float64)


class SubgoalSearch:
    """Optimizer over generator codes (default: the planners' CEM at HVF's 200 / 40 / 5)."""

    def __init__(self, generator: SubgoalGenerator, distance: Distance, config: SubgoalSearchConfig | None = None,
                 optimizer: Optimizer | None = None) -> None:
        for name, value, kind in (("generator", generator, SubgoalGenerator), ("distance", distance, Distance)):
            if not isinstance(value, kind):
                raise TypeError(f"{name}: expected an hvp.contracts.{kind.__name__}, got {type(value).__name__}")
        self.generator, self.distance = generator, distance
        self.config = config or SubgoalSearchConfig()
        if optimizer is None:
            from hvp.planners.cem import CEM, CEMConfig

            cfg = self.config
            optimizer = CEM(CEMConfig(population=cfg.population, elites=cfg.elites, iterations=cfg.iterations,
                                      init_std=cfg.init_std, min_std=min(0.05, cfg.init_std)))
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an hvp.contracts.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer

    def search(self, start: np.ndarray, goal: np.ndarray, rng: np.random.Generator,
               subgoals: int | None = None) -> SubgoalChain:
        """start, goal float32 [D] -> the best chain of `subgoals` (default config.subgoals) latents found."""
        started = time.perf_counter()
        count = self.config.subgoals if subgoals is None else subgoals
        start = check_array("start", np.asarray(start, np.float32), (None,), np.float32)
        goal = check_array("goal", np.asarray(goal, np.float32), start.shape, np.float32)
        scale, how = self.config.code_scale, self.config.chain_cost
        best = {"cost": np.inf, "plan": np.zeros((count, self.generator.code_dim), np.float32)}

        def cost_fn(plans: np.ndarray) -> np.ndarray:  # plans float32 [N, K, C] in [-1, 1]
            chains = self.generator.propose(start, goal, (scale * plans).astype(np.float32))
            costs = chain_cost(segment_steps(self.distance, start, chains, goal), how)
            # keep the best sample: on the non-smooth max cost the elite mean can be worse than its best member
            finite = np.where(np.isfinite(costs), costs, np.inf)
            if finite.min() < best["cost"]:
                best.update(cost=float(finite.min()), plan=plans[int(np.argmin(finite))].copy())
            return costs

        cost_fn(best["plan"][None])  # the prior's mode (all codes 0) is a candidate too
        result = self.optimizer.optimize(cost_fn, best["plan"], rng)
        candidates = np.clip(np.stack([result.plan, best["plan"]]), -1, 1)
        chains = self.generator.propose(start, goal, (scale * candidates).astype(np.float32))
        segments = segment_steps(self.distance, start, chains, goal)
        pick = int(np.nanargmin(np.where(np.isnan(costs := chain_cost(segments, how)), np.inf, costs)))
        codes, chain, segments = (scale * candidates[pick]).astype(np.float32), chains[pick:pick + 1], segments[pick]
        return SubgoalChain(chain[0], codes, segments, float(costs[pick]), time.perf_counter() - started)
