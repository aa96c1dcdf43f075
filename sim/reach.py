"""Reach: a two-link planar arm brings its end effector to a goal position (a sanity task).

The goal image shows the arm in the goal configuration, so the goal is reachable by
construction.
"""
from __future__ import annotations

import numpy as np

from hvp.sim.arena import arena_xml
from hvp.sim.mujoco_env import MujocoTaskEnv

LINKS = (0.5, 0.4)
SUCCESS_RADIUS = 0.1
ELBOW_LIMIT = 2.6


def end_effector(qpos: np.ndarray) -> np.ndarray:
    """Forward kinematics: joint angles [2] -> end-effector position [2]."""
    q1, q12 = qpos[0], qpos[0] + qpos[1]
    return np.array([LINKS[0] * np.cos(q1) + LINKS[1] * np.cos(q12), LINKS[0] * np.sin(q1) + LINKS[1] * np.sin(q12)])


class ReachEnv(MujocoTaskEnv):
    """state = joints (q1, q2, dq1, dq2); true_state = end effector (x, y), joints (q1, q2); goal = (x, y)."""

    def __init__(self, max_steps: int = 50, **kwargs) -> None:
        super().__init__(max_steps=max_steps, **kwargs)

    def layouts(self) -> list[str]:
        l1, l2 = LINKS
        arm = f"""<body name="upper" pos="0 0 0.05">
      <joint name="shoulder" type="hinge" axis="0 0 1" damping="0.5"/>
      <geom type="capsule" fromto="0 0 0 {l1} 0 0" size="0.06" mass="0.5" rgba="0.3 0.3 0.35 1" contype="0" conaffinity="0"/>
      <body name="fore" pos="{l1} 0 0">
        <joint name="elbow" type="hinge" axis="0 0 1" damping="0.5" range="-{ELBOW_LIMIT} {ELBOW_LIMIT}" limited="true"/>
        <geom type="capsule" fromto="0 0 0 {l2} 0 0" size="0.05" mass="0.3" rgba="0.45 0.45 0.5 1" contype="0" conaffinity="0"/>
        <geom name="hand" type="sphere" pos="{l2} 0 0.02" size="0.09" mass="0.05" rgba="0.9 0.15 0.1 1" contype="0" conaffinity="0"/>
      </body>
    </body>"""
        actuators = ('<motor joint="shoulder" gear="1.5" ctrlrange="-1 1" ctrllimited="true"/>\n    '
                     '<motor joint="elbow" gear="1.5" ctrlrange="-1 1" ctrllimited="true"/>')
        return [arena_xml([], arm, actuators)]

    def sample_episode(self, rng: np.random.Generator, layout: int):
        start = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-ELBOW_LIMIT, ELBOW_LIMIT) * 0.8])
        while True:
            goal_q = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-ELBOW_LIMIT, ELBOW_LIMIT) * 0.8])
            if np.linalg.norm(end_effector(goal_q) - end_effector(start)) > 0.4:
                return start, goal_q, end_effector(goal_q)

    def proprio(self, data) -> np.ndarray:
        return np.concatenate([data.qpos[:2], data.qvel[:2]])

    def true_state(self, data) -> np.ndarray:
        return np.concatenate([end_effector(data.qpos), data.qpos[:2]])

    def distance_to_goal(self, data, goal: np.ndarray) -> float:
        return float(np.linalg.norm(end_effector(data.qpos) - goal))

    def is_success(self, data, goal: np.ndarray) -> bool:
        return self.distance_to_goal(data, goal) < SUCCESS_RADIUS
