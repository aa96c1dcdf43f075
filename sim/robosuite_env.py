"""robosuite tasks (Lift, Stack, Door with a Panda) behind the hvp Env contract.

Control: operational-space position control (OSC_POSITION, fixed gripper-down
orientation); action float32 [4] in [-1, 1] = end-effector (dx, dy, dz) in units of
5 cm per control step at 20 Hz, then the gripper (-1 open, +1 close).

Rendering: one mujoco.Renderer on robosuite's model with the agentview camera and
robosuite's visual-only geom groups. robosuite's own pipeline renders with 4x
multisampling, shadows and reflections (~100 ms per 64x64 frame in software EGL);
with `fast_render` those are off (~20 ms). mujoco.Renderer returns upright images,
so robosuite's vertical flip is not needed.

Goals: reset(seed) resets robosuite with a generator seeded from `seed`, runs the
scripted solution (`scripted_action`) to its end, renders that state as the goal
image and records the object pose as the goal, then resets again with the same
seed so the episode starts from the same state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import gymnasium as gym
import mujoco
import numpy as np

from hvp.sim.mujoco_env import check_action, check_sizes

STEP_SCALE = 0.05  # metres per control step for a full action (robosuite's OSC output_max)
GAIN = 1.0 / (2 * STEP_SCALE)  # scripted controller: full action at 10 cm of error
OPEN, CLOSE = -1.0, 1.0
APPROACH_FINGER = 0.03  # finger joint position (m) while approaching a cube; 0.04 is fully open
SETTLE_STEPS = 8  # scripted steps kept after success when making a goal


@dataclass(frozen=True)
class RobosuiteTask:
    """How one robosuite task plugs into the contract."""

    name: str  # robosuite environment name
    horizon: int  # default max_steps
    goal_keys: tuple[str, ...]  # robosuite observation keys whose values at the goal define it
    object_keys: tuple[str, ...]  # observation keys of the low-dimensional object state
    options: tuple[tuple[str, Any], ...] = ()  # extra robosuite constructor arguments


TASKS = {
    "lift": RobosuiteTask("Lift", 60, ("cube_pos",), ("cube_pos", "cube_quat")),
    "stack": RobosuiteTask("Stack", 100, ("cubeA_pos",), ("cubeA_pos", "cubeA_quat", "cubeB_pos")),
    # No latch: the door opens by pulling the handle, which position control can do.
    "door": RobosuiteTask("Door", 80, ("hinge_qpos",), ("door_pos", "handle_pos", "hinge_qpos"),
                          (("use_latch", False),)),
}
PROPRIO_KEYS = ("robot0_eef_pos", "robot0_gripper_qpos", "robot0_joint_pos")


def _osc_position_config() -> dict:
    from robosuite.controllers import load_composite_controller_config

    config = load_composite_controller_config(controller="BASIC", robot="Panda")
    config["body_parts"]["right"].update(type="OSC_POSITION", output_max=[STEP_SCALE] * 3,
                                         output_min=[-STEP_SCALE] * 3)
    return config


class RobosuiteEnv(gym.Env):
    """obs = {"image": uint8 [h, w, 3], "state": float32 [12] (eef xyz, finger qpos [2], joint qpos [7])}.

    info["true_state"]: float32 eef xyz followed by the task's object state;
    `goal` is float64 (cube xyz for lift, cube A xyz for stack, hinge angle for door).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "lift", image_size: int | Sequence[int] = 64, max_steps: int | None = None,
                 camera: str = "agentview", fast_render: bool = True, render_mode: str | None = "rgb_array") -> None:
        import robosuite

        if task not in TASKS:
            raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
        self.task = TASKS[task]
        self.max_steps = max_steps or self.task.horizon
        self.image_shape = check_sizes(image_size, self.max_steps)
        height, width, _ = self.image_shape
        self.camera = camera
        self.render_mode = render_mode
        # hard_reset=False keeps one compiled model, so the renderer survives resets.
        self.sim_env = robosuite.make(
            self.task.name, robots="Panda", controller_configs=_osc_position_config(), has_renderer=False,
            has_offscreen_renderer=False, use_camera_obs=False, use_object_obs=True, hard_reset=False,
            control_freq=20, horizon=10**6, ignore_done=True, **dict(self.task.options))
        self._renderer = self._make_renderer(fast_render)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=self.sim_env.action_spec[0].shape, dtype=np.float32)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, shape=self.image_shape, dtype=np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, shape=(12,), dtype=np.float32),
        })
        self.goal_image = np.zeros(self.image_shape, np.uint8)
        self.goal = np.zeros(0)
        self.goal_solved = False  # whether the scripted solution succeeded when making this goal
        self.last_observation: dict[str, np.ndarray] = {}  # robosuite's own observation dict
        self._steps = 0

    def _make_renderer(self, fast: bool) -> mujoco.Renderer:
        model = self.sim_env.sim.model._model
        if fast:
            model.vis.quality.offsamples = 0  # multisampling costs more than shadows in software GL
        renderer = mujoco.Renderer(model, self.image_shape[0], self.image_shape[1])
        if fast:
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._scene_option = mujoco.MjvOption()
        self._scene_option.geomgroup[0] = 0  # robosuite's collision geoms, hidden as robosuite does
        return renderer

    # -- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31))
        self._reset_simulator(episode_seed)
        steps_since_success = 0
        for _ in range(self.task.horizon):  # run on a little past success so the goal is unambiguous
            self._simulate(scripted_action(self))
            steps_since_success = steps_since_success + 1 if self.sim_env._check_success() else 0
            if steps_since_success > SETTLE_STEPS:
                break
        self.goal_solved = bool(self.sim_env._check_success())
        self.goal = np.concatenate([np.atleast_1d(self.last_observation[k]) for k in self.task.goal_keys])
        self.goal_image = self.render()
        self._reset_simulator(episode_seed)
        self._steps = 0
        return self._obs(), {**self._info(), "goal_image": self.goal_image}

    def step(self, action: np.ndarray):
        self._simulate(check_action(action, self.action_space.shape))
        self._steps += 1
        info = self._info()
        return self._obs(), -info["distance"], info["success"], self._steps >= self.max_steps, info

    def render(self) -> np.ndarray:
        self._renderer.update_scene(self.sim_env.sim.data._data, camera=self.camera,
                                    scene_option=self._scene_option)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
        self.sim_env.close()

    # -- helpers --------------------------------------------------------------------
    def _reset_simulator(self, seed: int) -> None:
        """robosuite reset whose object placement and joint noise depend only on `seed`."""
        rng = np.random.default_rng(seed)
        self.sim_env.rng = rng
        self.sim_env.placement_initializer.rng = rng
        self.last_observation = self.sim_env.reset()

    def _simulate(self, action: np.ndarray) -> None:
        self.last_observation = self.sim_env.step(action)[0]

    def _obs(self) -> dict[str, np.ndarray]:
        state = np.concatenate([self.last_observation[k] for k in PROPRIO_KEYS]).astype(np.float32)
        return {"image": self.render(), "state": state}

    def _info(self) -> dict[str, Any]:
        now = np.concatenate([np.atleast_1d(self.last_observation[k]) for k in self.task.goal_keys])
        true_state = np.concatenate([self.last_observation["robot0_eef_pos"]]
                                    + [np.atleast_1d(self.last_observation[k]) for k in self.task.object_keys])
        return {"success": bool(self.sim_env._check_success()), "distance": float(np.linalg.norm(now - self.goal)),
                "true_state": true_state.astype(np.float32)}


# -- scripted solutions: a stateless policy of the current robosuite observation --------
def _move(eef: np.ndarray, target: np.ndarray, gripper: float) -> np.ndarray:
    return np.append(np.clip(GAIN * (target - eef), -1.0, 1.0), gripper).astype(np.float32)


def _pick(env: RobosuiteEnv, obs: dict[str, np.ndarray], cube: np.ndarray, cube_model: Any) -> np.ndarray | None:
    """Approach, descend and close on a cube; None once it is grasped."""
    eef = obs["robot0_eef_pos"]
    if env.sim_env._check_grasp(gripper=env.sim_env.robots[0].gripper, object_geoms=cube_model):
        return None
    # The gripper command moves the fingers (sign only): narrow them so they miss a neighbouring cube.
    narrow = float(np.sign(obs["robot0_gripper_qpos"][0] - APPROACH_FINGER))
    if np.linalg.norm(eef[:2] - cube[:2]) > 0.01:
        return _move(eef, cube + [0, 0, 0.1], narrow)  # align above first, then descend straight down
    if eef[2] - cube[2] > 0.01:
        return _move(eef, cube, narrow)
    return _move(eef, cube, CLOSE)


def _lift(env: RobosuiteEnv, obs: dict[str, np.ndarray]) -> np.ndarray:
    cube = obs["cube_pos"]
    action = _pick(env, obs, cube, env.sim_env.cube)
    return action if action is not None else _move(obs["robot0_eef_pos"], cube + [0, 0, 0.15], CLOSE)


def _stack(env: RobosuiteEnv, obs: dict[str, np.ndarray]) -> np.ndarray:
    eef, cube_a, cube_b = obs["robot0_eef_pos"], obs["cubeA_pos"], obs["cubeB_pos"]
    height = cube_a[2] - cube_b[2]  # 0.045 when A rests on B (half sizes 0.02 + 0.025)
    aligned = np.linalg.norm(cube_a[:2] - cube_b[:2]) < 0.012
    if aligned and 0.035 < height < 0.08:  # the fingertips reach below A, so A is let go a little above B
        still_holding = obs["robot0_gripper_qpos"][0] < APPROACH_FINGER
        return _move(eef, eef if still_holding else cube_a + [0, 0, 0.1], OPEN)  # let go, then back off
    action = _pick(env, obs, cube_a, env.sim_env.cubeA)
    if action is not None:
        return action
    grip_offset = eef - cube_a
    if not aligned and height < 0.08:
        return _move(eef, np.append(cube_a[:2], cube_b[2] + 0.1) + grip_offset, CLOSE)  # lift clear of B
    if not aligned:
        return _move(eef, cube_b + [0, 0, 0.1] + grip_offset, CLOSE)
    return _move(eef, cube_b + [0, 0, 0.04] + grip_offset, CLOSE)


def _door(env: RobosuiteEnv, obs: dict[str, np.ndarray]) -> np.ndarray:
    eef, handle = obs["robot0_eef_pos"], obs["handle_pos"]
    if np.linalg.norm(eef - handle) > 0.02 and float(obs["hinge_qpos"]) < 0.05:
        return _move(eef, handle, OPEN)
    # Pull along the circle around the hinge: tangent to the door's swing.
    sim = env.sim_env.sim
    hinge = sim.data._data.xanchor[sim.model.joint_name2id(env.sim_env.door.joints[0])]
    radius = (handle - hinge) * [1, 1, 0]
    tangent = np.array([radius[1], -radius[0], 0.0])
    return _move(eef, handle + 0.1 * tangent / (np.linalg.norm(tangent) + 1e-9), CLOSE)


SCRIPTS: dict[str, Callable[[RobosuiteEnv, dict[str, np.ndarray]], np.ndarray]] = {
    "Lift": _lift, "Stack": _stack, "Door": _door}


def scripted_action(env: RobosuiteEnv) -> np.ndarray:
    """The scripted solution's action float32 [4] for the env's current state (usable to collect data)."""
    return SCRIPTS[env.task.name](env, env.last_observation)
