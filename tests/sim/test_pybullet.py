"""pybullet adapter tasks against the Env contract, with real pybullet TinyRenderer images."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pybullet")
from adapter_contract import check_contract  # noqa: E402

from hvp.sim import make  # noqa: E402

NAMES = ["pybullet-kuka-reach", "pybullet-push"]


@pytest.fixture(params=NAMES)
def env(request):
    env = make(request.param, max_steps=8)
    yield env
    env.close()


def test_contract(env):
    check_contract(env, seed=1)


def test_envs_own_their_clients():
    first, second = make("pybullet-push"), make("pybullet-push")
    try:
        assert first.client != second.client
        first.reset(seed=0)
        second.reset(seed=5)
        start = second.render()
        for _ in range(5):
            first.step(np.ones(2, np.float32))
        np.testing.assert_array_equal(start, second.render())  # stepping one env leaves the other alone
    finally:
        first.close()
        second.close()


def test_reach_goal_is_reachable_in_goal_configuration():
    env = make("pybullet-kuka-reach")
    try:
        env.reset(seed=2)
        _, goal_configuration, goal = env.sample_episode(np.random.default_rng(2))
        env.set_configuration(goal_configuration)
        assert env.distance_to_goal() == pytest.approx(0.0, abs=1e-6)
        assert env._info()["success"]
    finally:
        env.close()


def test_push_moves_the_box_toward_its_goal_when_pushed():
    env = make("pybullet-push", max_steps=60)
    try:
        env.reset(seed=0)
        box = env.true_state()[2:]
        start_distance = env.distance_to_goal()
        # Go behind the box (opposite the goal), then push through it toward the goal.
        direction = (env.goal - box) / np.linalg.norm(env.goal - box)
        for waypoint in (box - 0.15 * direction, env.goal):
            for _ in range(30):
                error = waypoint - env.true_state()[:2]
                env.step(np.clip(error / 0.05, -1, 1).astype(np.float32))
        assert env.distance_to_goal() < start_distance - 0.05
    finally:
        env.close()
