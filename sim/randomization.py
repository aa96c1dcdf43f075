"""Domain randomization for native MuJoCo tasks (off by default).

Applied to a compiled MjModel at every reset, from the nominal values saved at
construction, so episodes never accumulate perturbations. The same knobs, at fixed
strengths, emulate a real robot's domain shift in the sim-to-real presets.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from hvp.config import Config, require


@dataclass(frozen=True)
class DomainRandomization(Config):
    color: float = 0.0  # max per-channel RGB change of every geom (0..1)
    texture: float = 0.0  # per-geom brightness noise (0..1): a cheap stand-in for texture change
    lighting: float = 0.0  # max relative change of light intensity, and light position jitter (m)
    camera: float = 0.0  # camera position jitter in metres; tilt jitter is 100x that in degrees (0.02 -> 2 deg)
    friction: tuple[float, float] = (1.0, 1.0)  # multiplicative range for geom friction
    mass: tuple[float, float] = (1.0, 1.0)  # multiplicative range for body masses
    action_noise: float = 0.0  # std of Gaussian noise added to every action
    action_latency: int = 0  # control steps between an action's command and its effect
    fixed: bool = False  # True: one draw per env (a fixed shift), False: a new draw every reset

    def validate(self) -> None:
        for name in ("color", "texture", "lighting", "camera", "action_noise"):
            require(getattr(self, name) >= 0, "DomainRandomization.{} must be >= 0 (got {})", name, getattr(self, name))
        for name in ("friction", "mass"):
            low, high = getattr(self, name)
            require(0 < low <= high, "DomainRandomization.{} must be a range 0 < low <= high (got {})", name, (low, high))
        require(self.action_latency >= 0, "DomainRandomization.action_latency must be >= 0 (got {})", self.action_latency)

    @property
    def active(self) -> bool:
        return self != DomainRandomization(fixed=self.fixed)


DomainRandomization.PRESETS = {"debug": {}, "cpu": {}, "gpu": {}}

# Strengths used to train robust models ("train") and to emulate unseen real robots.
SHIFTS = {
    "none": DomainRandomization(),
    "train": DomainRandomization(color=0.05, lighting=0.1, camera=0.005, friction=(0.9, 1.1), mass=(0.9, 1.1)),
    "mild": DomainRandomization(color=0.15, texture=0.1, lighting=0.3, camera=0.02, friction=(0.8, 0.8),
                                mass=(1.2, 1.2), action_noise=0.02, fixed=True),
    "strong": DomainRandomization(color=0.35, texture=0.25, lighting=0.6, camera=0.05, friction=(0.6, 0.6),
                                  mass=(1.5, 1.5), action_noise=0.05, action_latency=1, fixed=True),
}


class Randomizer:
    """Applies a DomainRandomization to one MjModel, restoring nominal values first."""

    def __init__(self, model: mujoco.MjModel, config: DomainRandomization) -> None:
        self.model = model
        self.config = config
        self._nominal = {
            "geom_rgba": model.geom_rgba.copy(),
            "light_diffuse": model.light_diffuse.copy(),
            "light_pos": model.light_pos.copy(),
            "cam_pos": model.cam_pos.copy(),
            "cam_quat": model.cam_quat.copy(),
            "geom_friction": model.geom_friction.copy(),
            "body_mass": model.body_mass.copy(),
        }
        self._drawn = False

    def apply(self, rng: np.random.Generator) -> None:
        cfg, model, nominal = self.config, self.model, self._nominal
        if not cfg.active or (cfg.fixed and self._drawn):
            return
        if cfg.fixed:  # a fixed shift is the same for every episode: draw it from its own seed
            rng = np.random.default_rng(12345)
        self._drawn = True
        rgba = nominal["geom_rgba"].copy()
        rgba[:, :3] += rng.uniform(-cfg.color, cfg.color, size=(len(rgba), 3))
        rgba[:, :3] *= 1.0 + rng.uniform(-cfg.texture, cfg.texture, size=(len(rgba), 1))
        model.geom_rgba[:] = np.clip(rgba, 0.0, 1.0)
        model.light_diffuse[:] = nominal["light_diffuse"] * (1.0 + rng.uniform(-cfg.lighting, cfg.lighting, size=(model.nlight, 1)))
        model.light_pos[:] = nominal["light_pos"] + rng.uniform(-cfg.lighting, cfg.lighting, size=(model.nlight, 3))
        model.cam_pos[:] = nominal["cam_pos"] + rng.uniform(-cfg.camera, cfg.camera, size=(model.ncam, 3))
        tilt = np.deg2rad(100.0 * cfg.camera) * rng.uniform(-1, 1, size=(model.ncam, 3))
        for i in range(model.ncam):
            delta = np.zeros(4)
            mujoco.mju_euler2Quat(delta, tilt[i], "xyz")
            mujoco.mju_mulQuat(model.cam_quat[i], nominal["cam_quat"][i], delta)
        model.geom_friction[:] = nominal["geom_friction"] * rng.uniform(*cfg.friction)
        model.body_mass[:] = nominal["body_mass"] * rng.uniform(*cfg.mass)
