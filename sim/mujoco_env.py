"""Base class of the native MuJoCo tasks: pixels in, actions in [-1, 1] out.

A task supplies its scene as MJCF layouts, how to sample a start and a goal, and
what success means; this class does physics, rendering, goal images, domain
randomization and input checking. Rendering settings are chosen deliberately:
software EGL rasterizes MuJoCo's default 4096^2 shadow map on every call (25-45 ms),
so every scene is compiled with shadows and reflections off (about 1 ms a frame).
"""
from __future__ import annotations

import collections
from typing import Any, Sequence

import gymnasium as gym
import mujoco
import numpy as np

from hvp.sim.randomization import DomainRandomization, Randomizer

FAST_VISUAL = '<visual><quality shadowsize="0" offsamples="0"/><global offwidth="{w}" offheight="{h}"/></visual>'
DEFAULT_VISUAL = '<visual><global offwidth="{w}" offheight="{h}"/></visual>'


def with_visual(xml: str, width: int, height: int, fast: bool) -> str:
    """Insert the render settings after the <mujoco> tag (the MJCF files leave them out)."""
    visual = (FAST_VISUAL if fast else DEFAULT_VISUAL).format(w=max(width, 64), h=max(height, 64))
    if not fast:  # what a scene written without render settings gets: lights cast shadows
        xml = xml.replace(' castshadow="false"', "")
    head, sep, tail = xml.partition(">")
    if not head.lstrip().startswith("<mujoco"):
        raise ValueError("MJCF must start with a <mujoco> element")
    return head + sep + visual + tail


def check_action(action: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Validate an action for any hvp env: float array of `shape`, finite; returns it as float64 clipped to [-1, 1]."""
    action = np.asarray(action)
    if action.shape != shape:
        raise ValueError(f"action: expected shape {shape}, got {action.shape}")
    if not np.issubdtype(action.dtype, np.floating):
        raise TypeError(f"action: expected a float array (float32), got dtype {action.dtype}")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"action: contains NaN or inf: {action}")
    return np.clip(action.astype(np.float64), -1.0, 1.0)


def check_sizes(image_size: int | Sequence[int], max_steps: int) -> tuple[int, int, int]:
    """Validate an env's image size (side or (height, width)) and horizon; -> image shape (h, w, 3)."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 16 or width < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {(height, width)}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    return height, width, 3


class MujocoTaskEnv(gym.Env):
    """obs = {"image": uint8 [h, w, 3], "state": float32 [S]}; actions float32 [A] in [-1, 1].

    Subclasses define `layouts()`, `sample_episode()`, `proprio()`, `true_state()`
    and `is_success()`. `goal_image` holds the current episode's goal.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    # true_state dims that proprio() measures, in proprio's order (proprio()[j] is true_state[dims[j]])
    proprio_state_dims: tuple[int, ...] = ()
    camera = "top"
    frame_skip = 10  # physics steps per control step (timestep 0.01 s -> 10 Hz control)

    def __init__(self, image_size: int | Sequence[int] = 64, max_steps: int = 100,
                 randomization: DomainRandomization | None = None, fast_render: bool = True,
                 render_mode: str | None = "rgb_array") -> None:
        self.image_shape = check_sizes(image_size, max_steps)
        height, width, _ = self.image_shape
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.randomization = randomization or DomainRandomization()
        self.models = [mujoco.MjModel.from_xml_string(with_visual(xml, width, height, fast_render))
                       for xml in self.layouts()]
        self._randomizers = [Randomizer(m, self.randomization) for m in self.models]
        self._datas = [mujoco.MjData(m) for m in self.models]
        self._renderers: dict[int, mujoco.Renderer] = {}
        self.layout = 0
        self.model, self.data = self.models[0], self._datas[0]
        nu = self.model.nu
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(nu,), dtype=np.float32)
        state_dim = len(self.proprio(self.data))
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, shape=self.image_shape, dtype=np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32),
        })
        self.goal_image = np.zeros(self.image_shape, np.uint8)
        self.goal: np.ndarray = np.zeros(0)
        self.goal_state: np.ndarray = np.zeros(0)
        self._steps = 0
        self._pending: collections.deque[np.ndarray] = collections.deque()

    # -- task interface ---------------------------------------------------------------
    def layouts(self) -> list[str]:
        """MJCF strings, one per layout (chosen by the reset seed)."""
        raise NotImplementedError

    def sample_episode(self, rng: np.random.Generator, layout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (start qpos, qpos shown in the goal image, task goal vector used by is_success)."""
        raise NotImplementedError

    def proprio(self, data: mujoco.MjData) -> np.ndarray:
        """Proprioception the controller may use (float32 [S])."""
        raise NotImplementedError

    def true_state(self, data: mujoco.MjData) -> np.ndarray:
        """Low-dimensional ground truth for evaluation and probes (float32)."""
        raise NotImplementedError

    def is_success(self, data: mujoco.MjData, goal: np.ndarray) -> bool:
        raise NotImplementedError

    def distance_to_goal(self, data: mujoco.MjData, goal: np.ndarray) -> float:
        """Task-space distance to the goal, for evaluation only."""
        raise NotImplementedError

    # -- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self.layout = int(rng.integers(len(self.models)))
        self.model, self.data = self.models[self.layout], self._datas[self.layout]
        self._randomizers[self.layout].apply(rng)
        start, goal_qpos, self.goal = self.sample_episode(rng, self.layout)
        self._set_qpos(goal_qpos)
        self.goal_image = self.render()
        self.goal_state = self.true_state(self.data)  # what the goal image shows, for evaluation and references
        self._set_qpos(start)
        self._steps = 0
        self._pending = collections.deque(np.zeros(self.model.nu) for _ in range(self.randomization.action_latency))
        obs = self._obs()
        return obs, {**self._info(), "goal_image": self.goal_image}

    def step(self, action: np.ndarray):
        action = self.check_action(action)
        if self.randomization.action_noise:
            action = action + self.np_random.normal(0.0, self.randomization.action_noise, size=action.shape)
        self._pending.append(np.clip(action, -1.0, 1.0))
        self.data.ctrl[:] = self._pending.popleft()
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self._steps += 1
        info = self._info()
        reward = -info["distance"]
        return self._obs(), float(reward), bool(info["success"]), self._steps >= self.max_steps, info

    def set_state(self, qpos: Any) -> dict[str, np.ndarray]:
        """Place the scene at rest at joint positions `qpos` float [nq] mid-episode (the goal is kept) -> the
        observation there. For probing a model from chosen states (bench/push_contact.py)."""
        self._set_qpos(self._check_qpos(qpos))
        return self._obs()

    def render_state(self, qpos: Any) -> np.ndarray:
        """The camera's image of the scene at joint positions `qpos` float [nq] -> uint8 [h, w, 3], posed in a
        scratch copy: the episode is not touched. Shows states a planner imagined (hvp plan --imagine state)."""
        scratch = mujoco.MjData(self.model)
        scratch.qpos[:] = self._check_qpos(qpos)
        mujoco.mj_forward(self.model, scratch)
        return self.render(scratch)

    def render(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """The camera's image of the episode (or of `data`, posed in the same model) -> uint8 [h, w, 3]."""
        renderer = self._renderers.get(self.layout)
        if renderer is None:
            renderer = mujoco.Renderer(self.model, self.image_shape[0], self.image_shape[1])
            self._renderers[self.layout] = renderer
        renderer.update_scene(self.data if data is None else data, camera=self.camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    # -- helpers --------------------------------------------------------------------
    def check_action(self, action: Any) -> np.ndarray:
        return check_action(action, self.action_space.shape)

    def _check_qpos(self, qpos: Any) -> np.ndarray:
        qpos = np.asarray(qpos, dtype=np.float64)
        if qpos.shape != (self.model.nq,) or not np.all(np.isfinite(qpos)):
            raise ValueError(f"qpos: expected {self.model.nq} finite joint positions, got shape {qpos.shape}")
        return qpos

    def _set_qpos(self, qpos: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        mujoco.mj_forward(self.model, self.data)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"image": self.render(), "state": self.proprio(self.data).astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        return {
            "success": bool(self.is_success(self.data, self.goal)),
            "distance": float(self.distance_to_goal(self.data, self.goal)),
            "true_state": self.true_state(self.data).astype(np.float32),
            "layout": self.layout,
        }
