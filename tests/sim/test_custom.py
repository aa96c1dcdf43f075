"""Bring-your-own MJCF scenes: the shipped example through from_mjcf and the registry."""
from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
from adapter_contract import check_contract

from hvp.sim import ENVS, from_mjcf, make
from hvp.sim.custom import register_mjcf

SCENE = Path(__file__).parent / "assets" / "two_link_arm.xml"


@pytest.fixture
def env():
    env = from_mjcf(SCENE, camera="overhead", target="fingertip", success_radius=0.05, max_steps=6)
    yield env
    env.close()


def test_contract(env):
    check_contract(env, seed=1)


def test_actions_span_the_ctrlrange(env):
    """Position actuators: action +1 drives the joint to the top of its ctrlrange."""
    env.reset(seed=0)
    for _ in range(60):
        obs, *_ = env.step(np.array([1.0, -1.0], np.float32))
    np.testing.assert_allclose(obs["state"][:2], [2.5, -2.2], atol=0.1)


def test_goal_is_the_target_position_in_the_goal_image_configuration(env):
    env.reset(seed=3)
    start, goal_qpos = env.sampler(env.model, np.random.default_rng(0))
    env._set_qpos(goal_qpos)
    reached = env.data.site("fingertip").xpos.copy()
    assert env.distance_to_goal(env.data, reached) == pytest.approx(0.0)
    assert env.is_success(env.data, reached) and not env.is_success(env.data, reached + 0.1)


def test_user_success_and_sampler():
    def sampler(model, rng):
        start = np.zeros(model.nq)
        return start, np.array([1.0, 0.5])

    env = from_mjcf(SCENE, camera="overhead", sampler=sampler, success=lambda data, goal: data.qpos[0] > 0.9)
    try:
        _, info = env.reset(seed=0)
        np.testing.assert_allclose(env.goal, [1.0, 0.5])  # no target: the goal is the joint configuration
        assert not info["success"] and info["distance"] == pytest.approx(np.hypot(1.0, 0.5))
        for _ in range(40):
            _, _, terminated, _, info = env.step(np.array([0.5, 0.2], np.float32))
        assert info["success"] and terminated
    finally:
        env.close()


def test_register_under_a_name():
    register_mjcf("test-two-link-arm", SCENE, camera="overhead", target="fingertip", max_steps=20)
    try:
        env = make("test-two-link-arm")
        assert env.max_steps == 20 and env.action_space.shape == (2,)
        assert ENVS.entry("test-two-link-arm").info["action_dim"] == 2
        env.close()
    finally:
        ENVS._entries.pop("test-two-link-arm")


@pytest.mark.parametrize("kwargs, message", [
    (dict(camera="nope"), "camera: no camera named 'nope'"),
    (dict(target="nope"), "target: no site or body named 'nope'"),
    (dict(success_radius=0.0), "success_radius must be > 0"),
])
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_mjcf(SCENE, **kwargs)


def test_missing_file_and_unactuated_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: expected an MJCF file"):
        from_mjcf(tmp_path / "missing.xml")
    empty = tmp_path / "empty.xml"
    empty.write_text('<mujoco><worldbody><geom type="sphere" size="0.1"/></worldbody></mujoco>')
    with pytest.raises(ValueError, match="no actuators"):
        from_mjcf(empty)


def test_integrator_actuators_are_refused(tmp_path):
    scene = tmp_path / "integrator.xml"
    scene.write_text(SCENE.read_text().replace('<position joint="elbow" kp="1" ctrlrange="-2.2 2.2"/>',
                                               '<intvelocity joint="elbow" kp="1" ctrlrange="-1 1" actrange="-2 2"/>'))
    assert mujoco.MjModel.from_xml_path(str(scene)).nu == 2
    with pytest.raises(ValueError, match="actuator 1: only motor/position/velocity-style"):
        from_mjcf(scene)
