"""Every native MuJoCo task against the env contract, on real EGL rendering."""
from __future__ import annotations

import numpy as np
import pytest

import hvp.sim
from hvp.registry import UnknownNameError
from hvp.sim.maze import LAYOUTS, MazeEnv
from hvp.sim.push import PushEnv
from adapter_contract import check_contract

NATIVE = ["maze-easy", "maze-medium", "maze-hard", "push", "push-wall", "reach"]


@pytest.mark.parametrize("name", NATIVE)
def test_native_env_contract(name):
    env = hvp.sim.make(name, max_steps=8)
    try:
        check_contract(env, seed=3)
    finally:
        env.close()


@pytest.mark.parametrize("size", [(32, 48), 96])
def test_any_image_size(size):
    env = hvp.sim.make("push", image_size=size)
    try:
        obs, _ = env.reset(seed=0)
        expected = (size, size, 3) if isinstance(size, int) else (*size, 3)
        assert obs["image"].shape == expected and env.goal_image.shape == expected
    finally:
        env.close()


def test_maze_hard_blocks_every_straight_line():
    env = MazeEnv("hard")
    try:
        for seed in range(40):
            env.reset(seed=seed)
            start, goal = env.unwrapped.data.qpos[:2].copy(), env.goal
            walls = LAYOUTS["hard"][env.layout]
            assert any(w.blocks(start, goal, margin=0.15) for w in walls), f"seed {seed}: straight line is free"
        assert len({env.reset(seed=s)[1]["layout"] for s in range(30)}) == len(LAYOUTS["hard"])
    finally:
        env.close()


def test_goal_image_shows_the_goal_state():
    """Moving the ball onto the goal reproduces the goal image (the goal is what it shows)."""
    env = MazeEnv("easy")
    try:
        env.reset(seed=5)
        np.testing.assert_array_equal(env.set_state(env.goal)["image"], env.goal_image)
        np.testing.assert_array_equal(env.goal_state, env.true_state(env.data))  # goal_state: the goal image's
        with pytest.raises(ValueError, match="qpos: expected 2 finite joint positions, got shape \\(3,\\)"):
            env.set_state(np.zeros(3))
        with pytest.raises(ValueError, match="qpos: expected 2 finite"):
            env.set_state([np.nan, 0.0])
    finally:
        env.close()


def test_push_goal_state_shows_the_block_at_its_goal_with_the_pusher_behind():
    env = PushEnv()
    try:
        env.reset(seed=3)
        np.testing.assert_allclose(env.goal_state[2:5], env.goal)
        assert env.state_cost(env.goal_state, env.goal_state) == 0.0
        assert env.state_cost(env.true_state(env.data), env.goal_state) > 0.3  # the goal lies 0.3-0.5 away
    finally:
        env.close()


def test_scripted_motion_reaches_goal_and_reports_success():
    env = MazeEnv("easy")
    try:
        env.reset(seed=1)
        for _ in range(env.max_steps):
            direction = env.goal - env.data.qpos[:2]
            _, _, terminated, _, info = env.step(np.clip(4 * direction, -1, 1).astype(np.float32))
            if terminated:
                break
        assert info["success"] and info["distance"] < 0.15
    finally:
        env.close()


def test_domain_randomization_changes_images_and_default_is_off():
    from hvp.sim.randomization import SHIFTS

    plain = hvp.sim.make("push")
    shifted = hvp.sim.make("push", randomization=SHIFTS["strong"])
    try:
        a, _ = plain.reset(seed=2)
        b, _ = shifted.reset(seed=2)
        assert np.abs(a["image"].astype(int) - b["image"].astype(int)).mean() > 2
        assert not plain.randomization.active and shifted.randomization.active
    finally:
        plain.close()
        shifted.close()


def test_unknown_env_lists_known_ones():
    with pytest.raises(UnknownNameError, match="maze-easy"):
        hvp.sim.make("maze-impossible")


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="difficulty"):
        MazeEnv("extreme")
    with pytest.raises(ValueError, match="image_size"):
        hvp.sim.make("reach", image_size=4)
