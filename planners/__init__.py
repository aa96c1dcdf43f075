"""Trajectory optimizers, planning costs and the latent MPC controller (numpy only, no torch).

    optimizer = make_optimizer("icem", preset="cpu", population=256)
    result = optimizer.optimize(cost_fn, init_mean, rng)      # cost_fn(actions [N, H, A]) -> [N]

Plug in your own: OPTIMIZERS.register("mine", factory) where
factory(preset="cpu", **overrides) returns an hvp.contracts.Optimizer.
"""
from __future__ import annotations

from typing import Any, Callable

from hvp.contracts import Optimizer
from hvp.registry import Registry
from hvp.planners.base import OptimizerConfig
from hvp.planners.cem import CEM, CEMConfig
from hvp.planners.cmaes import CMAES, CMAESConfig
from hvp.planners.icem import ICEM, ICEMConfig
from hvp.planners.mppi import MPPI, MPPIConfig
from hvp.planners.shooting import RandomShooting, RandomShootingConfig

OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


def config_factory(optimizer: Callable[[Any], Optimizer], config: type[OptimizerConfig]) -> Callable[..., Optimizer]:
    """A registry factory: (preset="cpu", **field overrides) -> optimizer built from its config preset."""
    def build(preset: str = "cpu", **overrides: Any) -> Optimizer:
        return optimizer(config.preset(preset, **overrides))
    return build


OPTIMIZERS.register("random", config_factory(RandomShooting, RandomShootingConfig),
                    info={"config": "RandomShootingConfig"})
OPTIMIZERS.register("cem", config_factory(CEM, CEMConfig), info={"config": "CEMConfig"})
OPTIMIZERS.register("icem", config_factory(ICEM, ICEMConfig), info={"config": "ICEMConfig"})
OPTIMIZERS.register("mppi", config_factory(MPPI, MPPIConfig), info={"config": "MPPIConfig"})
OPTIMIZERS.register("cmaes", config_factory(CMAES, CMAESConfig), info={"config": "CMAESConfig", "needs": "cma"})


def make_optimizer(name: str, preset: str = "cpu", **overrides: Any) -> Optimizer:
    """A registered optimizer from a config preset (debug/cpu/gpu) plus field overrides."""
    return OPTIMIZERS.make(name, preset=preset, **overrides)


__all__ = ["OPTIMIZERS", "make_optimizer", "config_factory", "CEM", "CEMConfig", "CMAES", "CMAESConfig",
           "ICEM", "ICEMConfig", "MPPI", "MPPIConfig", "RandomShooting", "RandomShootingConfig", "OptimizerConfig"]
