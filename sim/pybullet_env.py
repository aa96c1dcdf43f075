"""pybullet tasks behind the hvp Env contract: a KUKA iiwa reach and a planar push.

Each env owns one DIRECT physics client (its own id, no GUI) and renders with
TinyRenderer (CPU, about 7 ms a 64x64 frame); no OpenGL context is needed. The goal
image is rendered with the scene put in the goal configuration, then the start
configuration is restored.
"""
from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from hvp.sim.mujoco_env import check_action, check_sizes

CONTROL_SUBSTEPS = 12  # physics steps (240 Hz) per control step -> 20 Hz control


class PybulletTaskEnv(gym.Env):
    """obs = {"image": uint8 [h, w, 3], "state": float32 [S]}; actions float32 [A] in [-1, 1].

    Subclasses build the scene in `build()`, and define `sample_episode()`,
    `set_configuration()`, `apply_action()`, `proprio()`, `true_state()` and
    `distance_to_goal()`; success is distance below `success_radius`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    action_dim = 0
    success_radius = 0.05
    camera_target = (0.0, 0.0, 0.0)
    camera_distance, camera_yaw, camera_pitch = 1.5, 0.0, -60.0

    def __init__(self, image_size: int | Sequence[int] = 64, max_steps: int = 50,
                 render_mode: str | None = "rgb_array") -> None:
        import pybullet
        import pybullet_data

        self.image_shape = check_sizes(image_size, max_steps)
        height, width, _ = self.image_shape
        self.p = pybullet
        self.client = pybullet.connect(pybullet.DIRECT)
        pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        pybullet.setGravity(0, 0, -9.81, physicsClientId=self.client)
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.build()
        self._view = pybullet.computeViewMatrixFromYawPitchRoll(
            self.camera_target, self.camera_distance, self.camera_yaw, self.camera_pitch, 0, 2)
        self._projection = pybullet.computeProjectionMatrixFOV(50, width / height, 0.05, 10.0)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.action_dim,), dtype=np.float32)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, shape=self.image_shape, dtype=np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, shape=(len(self.proprio()),), dtype=np.float32),
        })
        self.goal_image = np.zeros(self.image_shape, np.uint8)
        self.goal = np.zeros(3)
        self._steps = 0

    # -- task interface ---------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def sample_episode(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (start configuration, goal configuration, task goal vector)."""
        raise NotImplementedError

    def set_configuration(self, configuration: np.ndarray) -> None:
        raise NotImplementedError

    def apply_action(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def proprio(self) -> np.ndarray:
        raise NotImplementedError

    def true_state(self) -> np.ndarray:
        raise NotImplementedError

    def distance_to_goal(self) -> float:
        raise NotImplementedError

    # -- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start, goal_configuration, self.goal = self.sample_episode(self.np_random)
        self.set_configuration(goal_configuration)
        self.goal_image = self.render()
        self.set_configuration(start)
        self._steps = 0
        return self._obs(), {**self._info(), "goal_image": self.goal_image}

    def step(self, action: np.ndarray):
        self.apply_action(check_action(action, self.action_space.shape))
        for _ in range(CONTROL_SUBSTEPS):
            self.p.stepSimulation(physicsClientId=self.client)
        self._steps += 1
        info = self._info()
        return self._obs(), -info["distance"], info["success"], self._steps >= self.max_steps, info

    def render(self) -> np.ndarray:
        height, width, _ = self.image_shape
        _, _, rgba, _, _ = self.p.getCameraImage(
            width, height, self._view, self._projection, renderer=self.p.ER_TINY_RENDERER,
            flags=self.p.ER_NO_SEGMENTATION_MASK, physicsClientId=self.client)
        return np.asarray(rgba, np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        if self.client >= 0 and self.p.isConnected(self.client):
            self.p.disconnect(self.client)
        self.client = -1

    def _obs(self) -> dict[str, np.ndarray]:
        return {"image": self.render(), "state": self.proprio().astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        distance = self.distance_to_goal()
        return {"success": distance < self.success_radius, "distance": distance,
                "true_state": self.true_state().astype(np.float32)}


class KukaReachEnv(PybulletTaskEnv):
    """A KUKA iiwa brings its end effector to a goal position.

    action float32 [7]: joint position increments, 0.1 rad per step at full scale.
    state float32 [14]: joint positions and velocities. goal: end-effector xyz (m).
    """

    action_dim = 7
    joint_step = 0.1  # rad per control step at |action| = 1
    camera_target = (0.0, 0.0, 0.5)
    camera_distance, camera_yaw, camera_pitch = 1.8, 45.0, -30.0

    def build(self) -> None:
        self.p.loadURDF("plane.urdf", physicsClientId=self.client)
        self.robot = self.p.loadURDF("kuka_iiwa/model.urdf", useFixedBase=True, physicsClientId=self.client)
        self.joints = list(range(self.p.getNumJoints(self.robot, physicsClientId=self.client)))
        limits = [self.p.getJointInfo(self.robot, j, physicsClientId=self.client)[8:10] for j in self.joints]
        self.joint_low, self.joint_high = np.array(limits).T
        self.end_effector_link = self.joints[-1]

    def _end_effector(self) -> np.ndarray:
        return np.array(self.p.getLinkState(self.robot, self.end_effector_link, physicsClientId=self.client)[4])

    def sample_episode(self, rng: np.random.Generator):
        # Stay within 60% of the joint range: the arm then keeps well above the floor.
        def draw() -> np.ndarray:
            return rng.uniform(0.6 * self.joint_low, 0.6 * self.joint_high)

        start = draw()
        self.set_configuration(start)
        start_position = self._end_effector()
        while True:
            goal_configuration = draw()
            self.set_configuration(goal_configuration)
            goal_position = self._end_effector()
            if goal_position[2] > 0.2 and np.linalg.norm(goal_position - start_position) > 0.3:
                return start, goal_configuration, goal_position

    def set_configuration(self, configuration: np.ndarray) -> None:
        for joint, angle in zip(self.joints, configuration):
            self.p.resetJointState(self.robot, joint, angle, 0.0, physicsClientId=self.client)
        self._target = np.array(configuration, dtype=np.float64)

    def apply_action(self, action: np.ndarray) -> None:
        self._target = np.clip(self._target + self.joint_step * action, self.joint_low, self.joint_high)
        self.p.setJointMotorControlArray(self.robot, self.joints, self.p.POSITION_CONTROL,
                                         targetPositions=self._target, physicsClientId=self.client)

    def _joint_states(self) -> np.ndarray:
        states = self.p.getJointStates(self.robot, self.joints, physicsClientId=self.client)
        return np.array([s[:2] for s in states]).T  # [2, 7]: positions, velocities

    def proprio(self) -> np.ndarray:
        return self._joint_states().reshape(-1)

    def true_state(self) -> np.ndarray:
        return np.concatenate([self._end_effector(), self._joint_states()[0]])

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self._end_effector() - self.goal))


class PushEnv(PybulletTaskEnv):
    """A sphere pusher on a table pushes a box to a goal position, seen from above.

    action float32 [2]: pusher velocity (x, y), 0.5 m/s at full scale.
    state float32 [4]: pusher position and velocity. goal: box (x, y) in m.
    """

    action_dim = 2
    speed = 0.5  # m/s at |action| = 1
    half = 0.35  # half size of the square the box and pusher start in
    pusher_radius, box_half = 0.04, 0.05
    success_radius = 0.05
    camera_distance, camera_yaw, camera_pitch = 1.3, 0.0, -89.9

    def build(self) -> None:
        p, client = self.p, self.client
        p.loadURDF("plane.urdf", physicsClientId=client)
        sphere = p.createCollisionShape(p.GEOM_SPHERE, radius=self.pusher_radius, physicsClientId=client)
        sphere_look = p.createVisualShape(p.GEOM_SPHERE, radius=self.pusher_radius, rgbaColor=[0.9, 0.15, 0.1, 1],
                                          physicsClientId=client)
        self.pusher = p.createMultiBody(1.0, sphere, sphere_look, [0, 0, self.pusher_radius], physicsClientId=client)
        box = p.createCollisionShape(p.GEOM_BOX, halfExtents=[self.box_half] * 3, physicsClientId=client)
        box_look = p.createVisualShape(p.GEOM_BOX, halfExtents=[self.box_half] * 3, rgbaColor=[0.1, 0.3, 0.9, 1],
                                       physicsClientId=client)
        self.box = p.createMultiBody(0.5, box, box_look, [0.2, 0, self.box_half], physicsClientId=client)
        # Damp spin so the pusher stops rolling soon after a command ends.
        p.changeDynamics(self.pusher, -1, linearDamping=0.0, angularDamping=0.9, physicsClientId=client)

    def _xy(self, body: int) -> np.ndarray:
        return np.array(self.p.getBasePositionAndOrientation(body, physicsClientId=self.client)[0][:2])

    def sample_episode(self, rng: np.random.Generator):
        while True:
            pusher, box, goal = (rng.uniform(-self.half, self.half, size=2) for _ in range(3))
            clear = self.pusher_radius + 1.5 * self.box_half
            if np.linalg.norm(pusher - box) > clear and np.linalg.norm(goal - box) > 0.2 \
                    and np.linalg.norm(pusher - goal) > clear:
                # The goal image shows the box at its goal and the pusher where it starts.
                return np.concatenate([pusher, box]), np.concatenate([pusher, goal]), goal

    def set_configuration(self, configuration: np.ndarray) -> None:
        pusher, box = configuration[:2], configuration[2:]
        for body, xy, height in ((self.pusher, pusher, self.pusher_radius), (self.box, box, self.box_half)):
            self.p.resetBasePositionAndOrientation(body, [xy[0], xy[1], height], [0, 0, 0, 1],
                                                   physicsClientId=self.client)
            self.p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    def apply_action(self, action: np.ndarray) -> None:
        velocity = [self.speed * action[0], self.speed * action[1], 0.0]
        self.p.resetBaseVelocity(self.pusher, velocity, [0, 0, 0], physicsClientId=self.client)

    def proprio(self) -> np.ndarray:
        velocity = self.p.getBaseVelocity(self.pusher, physicsClientId=self.client)[0][:2]
        return np.concatenate([self._xy(self.pusher), velocity])

    def true_state(self) -> np.ndarray:
        return np.concatenate([self._xy(self.pusher), self._xy(self.box)])

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self._xy(self.box) - self.goal))
