"""Point-mass mazes: a ball in a walled arena, seen from above, goal = a ball position.

Difficulty sets the walls and how start/goal pairs are drawn:
- easy: small pillars; the straight line from start to goal is always free;
- medium: one wall with a gap; pairs drawn anywhere;
- hard: two staggered walls; the straight line is blocked for every pair, so greedy
  distance-to-goal fails and the planner must go around.
"""
from __future__ import annotations

import numpy as np

from hvp.sim.arena import Wall, arena_xml, planar_mover_xml, sample_free_point
from hvp.sim.mujoco_env import MujocoTaskEnv

BALL_RADIUS = 0.15  # at 64x64 about 9 px across: small objects collapse first in decoders
SUCCESS_RADIUS = 0.15
T = 0.05  # wall half thickness

LAYOUTS: dict[str, list[list[Wall]]] = {
    "easy": [
        [],
        [Wall(0.55, 0.55, 0.1, 0.1)],
        [Wall(-0.55, -0.5, 0.1, 0.1)],
    ],
    "medium": [
        [Wall(0.0, -0.3, T, 0.7)],  # vertical wall, gap at the top
        [Wall(0.0, 0.3, T, 0.7)],  # gap at the bottom
        [Wall(-0.3, 0.0, 0.7, T)],  # horizontal wall, gap on the right
    ],
    "hard": [
        [Wall(-0.3, 0.35, 0.7, T), Wall(0.3, -0.35, 0.7, T)],  # S: gaps right-top, left-bottom
        [Wall(0.3, 0.35, 0.7, T), Wall(-0.3, -0.35, 0.7, T)],  # mirrored S
        [Wall(0.35, 0.3, T, 0.7), Wall(-0.35, -0.3, T, 0.7)],  # S turned on its side
    ],
}
HORIZONS = {"easy": 60, "medium": 100, "hard": 150}


class MazeEnv(MujocoTaskEnv):
    """state = ball (x, y, vx, vy); true_state = ball (x, y); goal = target (x, y)."""

    planar_agent = True  # true_state[:2] is a directly actuated point: scripted exploration can steer it
    proprio_state_dims = (0, 1)  # the ball is the agent: its position is proprioception

    def __init__(self, difficulty: str = "easy", max_steps: int | None = None, **kwargs) -> None:
        if difficulty not in LAYOUTS:
            raise ValueError(f"difficulty: expected one of {sorted(LAYOUTS)}, got {difficulty!r}")
        self.difficulty = difficulty
        super().__init__(max_steps=max_steps or HORIZONS[difficulty], **kwargs)

    def layouts(self) -> list[str]:
        ball, actuators = planar_mover_xml(
            "ball", f'<geom name="ball" type="sphere" size="{BALL_RADIUS}" pos="0 0 {BALL_RADIUS}" mass="1" '
                    'rgba="0.9 0.15 0.1 1" contype="1" conaffinity="1"/>', damping=5.0, gear=5.0)
        return [arena_xml(walls, ball, actuators) for walls in LAYOUTS[self.difficulty]]

    def sample_episode(self, rng: np.random.Generator, layout: int):
        walls = LAYOUTS[self.difficulty][layout]
        clearance = BALL_RADIUS + 0.03
        for _ in range(10_000):
            start = sample_free_point(rng, walls, clearance)
            goal = sample_free_point(rng, walls, clearance)
            if np.linalg.norm(goal - start) < 0.5:
                continue
            blocked = any(w.blocks(start, goal, BALL_RADIUS) for w in walls)
            if self.difficulty == "easy" and blocked or self.difficulty == "hard" and not blocked:
                continue
            return start, goal, goal
        raise RuntimeError(f"could not sample a {self.difficulty} start/goal pair in layout {layout}")

    def proprio(self, data) -> np.ndarray:
        return np.concatenate([data.qpos[:2], data.qvel[:2]])

    def true_state(self, data) -> np.ndarray:
        return data.qpos[:2].copy()

    def distance_to_goal(self, data, goal: np.ndarray) -> float:
        return float(np.linalg.norm(data.qpos[:2] - goal))

    @staticmethod
    def state_cost(states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Straight-line ball distance: walls are not charged (the temporal cost knows them)."""
        return np.linalg.norm(states[..., :2] - goal_state[:2], axis=-1).astype(np.float64)

    def is_success(self, data, goal: np.ndarray) -> bool:
        return self.distance_to_goal(data, goal) < SUCCESS_RADIUS
