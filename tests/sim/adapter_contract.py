"""Env-contract checks shared by the adapter tests (robosuite, pybullet, custom MJCF)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env


def check_reset_and_step(env: gym.Env, seed: int, steps: int = 3) -> None:
    """Shapes, dtypes, ranges, no NaN, goal image, truncation flag and info keys."""
    obs, info = env.reset(seed=seed)
    height, width, _ = env.image_shape
    assert env.observation_space.contains(obs)
    assert obs["image"].shape == (height, width, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].dtype == np.float32 and np.all(np.isfinite(obs["state"]))
    assert env.goal_image.shape == (height, width, 3) and env.goal_image.dtype == np.uint8
    assert info["goal_image"] is env.goal_image
    assert np.abs(obs["image"].astype(int) - env.goal_image.astype(int)).mean() > 0.5, "goal image equals start"
    assert obs["image"].std() > 5, "start image is blank"
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert np.all(np.isfinite(obs["state"])) and np.isfinite(reward)
        assert isinstance(info["success"], bool) and info["distance"] >= 0
        assert info["true_state"].dtype == np.float32 and np.all(np.isfinite(info["true_state"]))
        assert isinstance(terminated, bool) and not truncated


def check_same_seed_same_images(env: gym.Env, seed: int) -> None:
    first, _ = env.reset(seed=seed)
    goal = env.goal_image.copy()
    env.reset(seed=seed + 1)
    other_goal = env.goal_image.copy()
    again, _ = env.reset(seed=seed)
    np.testing.assert_array_equal(first["image"], again["image"])
    np.testing.assert_array_equal(goal, env.goal_image)
    assert not np.array_equal(goal, other_goal), "different seeds gave the same goal"


def check_truncation(env: gym.Env, seed: int) -> None:
    env.reset(seed=seed)
    zero = np.zeros(env.action_space.shape, np.float32)
    truncated = [env.step(zero)[3] for _ in range(env.max_steps)]
    assert truncated[-1] and not any(truncated[:-1])


def check_bad_actions(env: gym.Env, seed: int) -> None:
    env.reset(seed=seed)
    dim = env.action_space.shape[0]
    with pytest.raises(ValueError, match="action: expected shape"):
        env.step(np.zeros(dim + 1, np.float32))
    with pytest.raises(TypeError, match="action: expected a float array"):
        env.step(np.zeros(dim, np.int64))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(dim, np.nan, np.float32))


def check_gymnasium(env: gym.Env) -> None:
    check_env(env.unwrapped, skip_render_check=True)


def check_contract(env: gym.Env, seed: int) -> None:
    """Every contract check above on one env (truncation needs a small max_steps)."""
    check_reset_and_step(env, seed=seed)
    check_same_seed_same_images(env, seed=seed)
    check_truncation(env, seed=seed)
    check_bad_actions(env, seed=seed)
    check_gymnasium(env)
