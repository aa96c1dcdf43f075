"""Tasks' cost-to-go between true states (what the readout cost plans with)."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.sim import task_state_cost
from hvp.sim.push import PUSH_OFFSET, PushEnv, path_around_disc


def push_state(pusher, block):
    return np.array([*pusher, *block, 0.0])


def test_push_cost_falls_as_the_block_nears_its_goal_and_prefers_the_pushing_side():
    goal = push_state([0.0, 0.0], [0.4, 0.0])
    cost = task_state_cost("push")
    assert cost is PushEnv.state_cost
    # block 0.4 left of its goal: the pushing spot is PUSH_OFFSET further left
    behind, in_front = push_state([-PUSH_OFFSET, 0.0], [0.0, 0.0]), push_state([PUSH_OFFSET, 0.0], [0.0, 0.0])
    home = push_state([0.4 - PUSH_OFFSET, 0.0], [0.4, 0.0])  # pushed home, the pusher behind the block
    costs = cost(np.stack([behind, in_front, home]), goal)
    np.testing.assert_allclose(costs[0], 0.4)  # behind the block: only the block's distance is left to pay
    assert costs[1] > costs[0] + 0.5 * PUSH_OFFSET  # in front: the pusher must walk around
    assert costs[2] < costs[0]
    # batched like a rollout: [N, H, S] -> [N, H]
    assert cost(np.zeros((3, 4, 5)), goal).shape == (3, 4)


def test_path_around_disc_takes_tangents_and_arc_only_when_the_line_is_blocked():
    starts, ends = np.array([[-1.0, 0], [-1, 1], [0, 0.5], [0, 0.2]]), np.array([[1.0, 0], [1, 1], [0, -0.5], [0, -0.2]])
    lengths = path_around_disc(starts, ends, np.zeros(2), 0.5)
    tangents, arc = 2 * np.sqrt(1 - 0.25), np.pi - 2 * np.arccos(0.5)  # from (-1, 0): tangent sqrt(1 - r^2)
    np.testing.assert_allclose(lengths, [tangents + 0.5 * arc, 2.0, 0.5 * np.pi, 0.5 * np.pi])  # inside: from the rim


def test_maze_cost_is_the_ball_distance():
    cost = task_state_cost("maze-easy")
    np.testing.assert_allclose(cost(np.array([[0.3, 0.4]]), np.zeros(2)), [0.5])


def test_tasks_without_a_state_cost_are_named():
    with pytest.raises(ValueError, match="task 'reach' defines no state_cost"):
        task_state_cost("reach")
    with pytest.raises(ValueError, match="names no task"):
        task_state_cost(None)
