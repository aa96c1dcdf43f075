"""Bring your own planner: a hill-climbing trajectory optimizer, registered in hvp.planners.OPTIMIZERS (its
contract probed at first use) and run inside hvp's latent MPC beside CEM on the same world model and episodes.

    python examples/custom_optimizer.py [--model runs/maze-easy] [--debug]
"""
import argparse

import numpy as np

from hvp.agent import build_controller, evaluate
from hvp.contracts import OptimizerResult
from hvp.extension import register_optimizer
from hvp.sim import make


class HillClimber:
    """Perturb the best plan so far with Gaussian noise that halves every iteration; keep the best ever seen."""

    def __init__(self, population: int = 128, iterations: int = 3, noise: float = 0.5) -> None:
        self.population, self.iterations, self.noise = population, iterations, noise

    def optimize(self, cost_fn, init_mean, rng, carry=None, deadline=None):
        best, best_cost, noise = init_mean.astype(np.float32), np.inf, self.noise
        for _ in range(self.iterations):
            candidates = best + noise * rng.standard_normal((self.population, *best.shape))
            candidates = np.clip(candidates, -1.0, 1.0).astype(np.float32)
            candidates[0] = best  # the incumbent competes again: the cost is re-estimated, never assumed
            costs = np.nan_to_num(np.asarray(cost_fn(candidates), np.float64), nan=np.inf)  # NaN counts as +inf
            if costs.min() <= best_cost:
                best, best_cost = candidates[costs.argmin()], float(costs.min())
            noise /= 2
        return OptimizerResult(plan=best, cost=best_cost, iterations=self.iterations)


def hill_climber(preset: str = "cpu", **overrides) -> HillClimber:
    """Registry factory: hvp passes a preset name (debug/cpu/gpu) and field overrides."""
    sizes = {"debug": dict(population=16, iterations=2), "cpu": {}, "gpu": dict(population=512, iterations=6)}
    return HillClimber(**{**sizes[preset], **overrides})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/maze-easy", help="run directory of a maze-easy world model")
    parser.add_argument("--debug", action="store_true", help="tiny sizes: a smoke run in seconds")
    args = parser.parse_args()
    episodes, max_steps, preset = (1, 4, "debug") if args.debug else (10, 60, "cpu")
    register_optimizer("hill-climb", hill_climber)  # now every planner option of hvp accepts "hill-climb"
    env = make("maze-easy", max_steps=max_steps)
    for planner in ("hill-climb", "cem"):
        controller, _ = build_controller(args.model, planner, "latent", preset=preset, threads=1)
        summary = evaluate(env, controller, episodes=episodes, seed=100, progress=False)
        print(f"{planner}: success {summary['successes']}/{summary['episodes']}, "
              f"act() {summary['step_ms_median']:.1f} ms median")
    env.close()
