"""Bring your own scene: a user's MJCF file as an hvp task (see docs/custom_scene.md).

- actions float32 [nu] in [-1, 1], mapped affinely onto each actuator's ctrlrange;
- state = qpos and qvel of the actuated joints;
- reset(seed) draws a start and a goal configuration of the actuated joints (the
  default sampler draws each joint uniformly within its range), renders the goal;
- the goal vector is the world position of `target` (a site or body name) in the goal
  configuration, or the goal joint positions when no target is given;
- success: `success(data, goal) -> bool` if given, else distance below `success_radius`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import mujoco
import numpy as np

from hvp.sim.mujoco_env import MujocoTaskEnv

GoalSampler = Callable[[mujoco.MjModel, np.random.Generator], tuple[np.ndarray, np.ndarray]]
SuccessFn = Callable[[mujoco.MjData, np.ndarray], bool]
UNLIMITED_RANGE = np.pi  # draw range (+-) for joints without limits in the default sampler


def uniform_joint_sampler(model: mujoco.MjModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Default sampler: (start qpos, goal qpos) float64 [nq], both from qpos0 with every actuated
    joint drawn uniformly within its range (+-pi where it has none)."""
    configurations = []
    for _ in range(2):
        qpos = model.qpos0.copy()
        for joint in actuated_joints(model):
            low, high = model.jnt_range[joint] if model.jnt_limited[joint] else (-UNLIMITED_RANGE, UNLIMITED_RANGE)
            qpos[model.jnt_qposadr[joint]] = rng.uniform(low, high)
        configurations.append(qpos)
    return configurations[0], configurations[1]


def actuated_joints(model: mujoco.MjModel) -> list[int]:
    """Ids of the hinge and slide joints driven by actuators, in actuator order."""
    joints = []
    for actuator in range(model.nu):
        if model.actuator_trntype[actuator] != mujoco.mjtTrn.mjTRN_JOINT:
            raise ValueError(f"actuator {actuator}: only joint actuators are supported, got transmission "
                             f"{mujoco.mjtTrn(model.actuator_trntype[actuator]).name}")
        joint = int(model.actuator_trnid[actuator, 0])
        if model.jnt_type[joint] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            raise ValueError(f"actuator {actuator}: drives a free or ball joint; only hinge and slide joints work")
        joints.append(joint)
    return joints


def rescale_controls(model: mujoco.MjModel) -> None:
    """Rewrite every actuator so ctrl in [-1, 1] gives the force the old ctrl in ctrlrange gave.

    force = gain * ctrl + bias is affine in ctrl, so ctrl = centre + half_range * ctrl'
    becomes gain' = gain * half_range and bias' = bias + gain * centre.
    """
    for actuator in range(model.nu):
        if not model.actuator_ctrllimited[actuator]:
            raise ValueError(f"actuator {actuator}: needs ctrlrange (and ctrllimited) so [-1, 1] can be mapped onto it")
        if model.actuator_gaintype[actuator] != mujoco.mjtGain.mjGAIN_FIXED or \
                model.actuator_dyntype[actuator] not in (mujoco.mjtDyn.mjDYN_NONE, mujoco.mjtDyn.mjDYN_FILTER,
                                                          mujoco.mjtDyn.mjDYN_FILTEREXACT):
            raise ValueError(f"actuator {actuator}: only motor/position/velocity-style actuators (fixed gain, no "
                             "integrator or muscle dynamics) can be rescaled")
        low, high = model.actuator_ctrlrange[actuator]
        centre, half_range = (low + high) / 2, (high - low) / 2
        gain = model.actuator_gainprm[actuator, 0]
        model.actuator_biasprm[actuator, 0] += gain * centre
        model.actuator_gainprm[actuator, 0] = gain * half_range
        if model.actuator_biastype[actuator] == mujoco.mjtBias.mjBIAS_NONE:
            model.actuator_biastype[actuator] = mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_ctrlrange[actuator] = (-1.0, 1.0)


class MjcfTaskEnv(MujocoTaskEnv):
    """A task from a self-contained MJCF file (meshes or textures by absolute path only).

    obs {"image": uint8 [h, w, 3], "state": float32 [2 * nu]}; action float32 [nu];
    info["true_state"]: float32 [nq + nv] full qpos and qvel.
    """

    def __init__(self, path: str | Path, camera: str | None = None, target: str | None = None,
                 success: SuccessFn | None = None, success_radius: float = 0.05,
                 sampler: GoalSampler = uniform_joint_sampler, frame_skip: int = 5, max_steps: int = 100,
                 **kwargs: Any) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"path: expected an MJCF file, got {str(path)!r} (no such file)")
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if success_radius <= 0:
            raise ValueError(f"success_radius must be > 0, got {success_radius}")
        self.xml = self.path.read_text()
        self.camera = camera  # None: MuJoCo's default free camera
        self.target = target
        self.success_fn = success
        self.success_radius = success_radius
        self.sampler = sampler
        self.frame_skip = frame_skip
        probe = mujoco.MjModel.from_xml_string(self.xml)  # check names before building renderers
        if probe.nu == 0:
            raise ValueError(f"{self.path}: the model has no actuators, so there is nothing to control")
        if camera is not None and mujoco.mj_name2id(probe, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"camera: no camera named {camera!r} in {self.path}")
        if target is not None and self._target_kind(probe) is None:
            raise ValueError(f"target: no site or body named {target!r} in {self.path}")
        self._joints = actuated_joints(probe)
        super().__init__(max_steps=max_steps, **kwargs)
        for model in self.models:
            rescale_controls(model)

    def _target_kind(self, model: mujoco.MjModel) -> mujoco.mjtObj | None:
        for kind in (mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_BODY):
            if mujoco.mj_name2id(model, kind, self.target) >= 0:
                return kind
        return None

    def _task_position(self, data: mujoco.MjData) -> np.ndarray:
        """float64 [3] world position of the target, or the actuated joint positions without one."""
        if self.target is None:
            return data.qpos[[self.model.jnt_qposadr[j] for j in self._joints]].copy()
        if self._target_kind(self.model) == mujoco.mjtObj.mjOBJ_SITE:
            return data.site(self.target).xpos.copy()
        return data.body(self.target).xpos.copy()

    def layouts(self) -> list[str]:
        return [self.xml]

    def sample_episode(self, rng: np.random.Generator, layout: int):
        start, goal_qpos = self.sampler(self.model, rng)
        self._set_qpos(goal_qpos)
        return start, goal_qpos, self._task_position(self.data)

    def proprio(self, data: mujoco.MjData) -> np.ndarray:
        qpos = data.qpos[[self.model.jnt_qposadr[j] for j in self._joints]]
        qvel = data.qvel[[self.model.jnt_dofadr[j] for j in self._joints]]
        return np.concatenate([qpos, qvel])

    def true_state(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([data.qpos, data.qvel])

    def distance_to_goal(self, data: mujoco.MjData, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self._task_position(data) - goal))

    def is_success(self, data: mujoco.MjData, goal: np.ndarray) -> bool:
        if self.success_fn is not None:
            return bool(self.success_fn(data, goal))
        return self.distance_to_goal(data, goal) < self.success_radius


def register_mjcf(name: str, path: str | Path, **kwargs: Any) -> None:
    """Register a scene as a named task: afterwards hvp.sim.make(name) builds it (kwargs are its defaults)."""
    from hvp.sim import ENVS

    model = mujoco.MjModel.from_xml_path(str(path))
    size = kwargs.get("image_size", 64)
    image = f"{size}x{size}" if isinstance(size, int) else "x".join(map(str, size))
    ENVS.register(name, MjcfTaskEnv, path=str(path), info={"backend": "mjcf", "image": image,
                                                          "action_dim": model.nu,
                                                          "horizon": kwargs.get("max_steps", 100)}, **kwargs)
