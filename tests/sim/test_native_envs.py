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


def test_render_state_shows_a_state_and_leaves_the_episode_as_it_was():
    from hvp.sim import make

    env = make("push", max_steps=20)
    try:
        env.reset(seed=3)
        for _ in range(4):  # under way: the pusher has a velocity that must survive the rendering
            env.step(np.array([0.8, -0.3], np.float32))
        before = env.unwrapped.data.qvel.copy(), env.unwrapped.data.qpos.copy(), env.unwrapped.render()
        np.testing.assert_array_equal(env.unwrapped.render_state(env.unwrapped.goal_state), env.unwrapped.goal_image)
        np.testing.assert_array_equal(env.unwrapped.data.qvel, before[0])
        np.testing.assert_array_equal(env.unwrapped.data.qpos, before[1])
        np.testing.assert_array_equal(env.unwrapped.render(), before[2])
        with pytest.raises(ValueError, match="qpos: expected 5 finite joint positions"):
            env.unwrapped.render_state(np.zeros(2))
        np.testing.assert_array_equal(env.unwrapped.data.qpos, before[1])  # a refused state changes nothing either
        after = [env.step(np.array([0.5, 0.5], np.float32))[0]["state"] for _ in range(2)]
        env.reset(seed=3)
        for _ in range(4):
            env.step(np.array([0.8, -0.3], np.float32))
        undisturbed = [env.step(np.array([0.5, 0.5], np.float32))[0]["state"] for _ in range(2)]
        np.testing.assert_array_equal(after, undisturbed)
    finally:
        env.close()


@pytest.mark.parametrize("name", ["push", "maze-easy"])
def test_proprioception_measures_the_true_state_dims_the_task_declares(name):
    from hvp.sim import make, task_proprio_state_dims

    dims = task_proprio_state_dims(name)
    env = make(name, max_steps=10)
    try:
        env.reset(seed=2)
        for _ in range(5):
            obs, *_ = env.step(np.array([0.7, 0.4], np.float32))
            true_state = env.unwrapped.true_state(env.unwrapped.data)
            np.testing.assert_allclose(obs["state"][:len(dims)], true_state[list(dims)], atol=1e-6)
    finally:
        env.close()
    with pytest.raises(ValueError, match="'reach': its proprioception measures no part of its true state"):
        task_proprio_state_dims("reach")


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
