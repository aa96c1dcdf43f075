"""StateSpaceRuntime: latent MPC imagining in a task state read out of the belief, on the exactly linear system.

Here the readout reads the linear system's state (x, y, vx, vy) out of its latent and the state
dynamics is that system's own, so plans rolled out in the state must equal the latent model's and
the controller must reach the goal the way the latent MPC does.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import CONTROL, DYNAMICS, LinearRuntime
from test_mpc import GOAL, START, run_closed_loop

from hvp.contracts import ModelRuntime
from hvp.planners import make_optimizer
from hvp.planners.costs import StateCost
from hvp.planners.mpc import LatentMPC, MPCConfig
from hvp.planners.state_space import PROPRIO, RECENT_ACTIONS, StateSpaceRuntime


class ScaledReadout:
    """The linear system's state, in units twice the latent's (so a readout that does nothing would show)."""

    task = "linear"

    def states(self, latents: np.ndarray) -> np.ndarray:
        return 2 * latents


class LinearStateDynamics:
    """The linear system in the readout's units; records the recent actions each rollout was given."""

    state_dim, action_dim, history = 4, 2, 2
    task = "linear"

    def __init__(self) -> None:
        self.recent_given: list[np.ndarray] = []

    def rollout(self, states, recent_actions, actions):
        self.recent_given.append(recent_actions.copy())
        path = []
        for step in range(actions.shape[1]):
            states = states @ DYNAMICS.T + 2 * actions[:, step] @ CONTROL.T
            path.append(states)
        return np.stack(path, axis=1).astype(np.float32)


def distance_to_goal(states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
    return np.sum((states - goal_state) ** 2, axis=-1)


@pytest.fixture
def space(linear_runtime) -> StateSpaceRuntime:
    return StateSpaceRuntime(linear_runtime, ScaledReadout(), LinearStateDynamics())


def test_it_is_a_model_runtime_whose_latents_are_read_out_states(space, linear_runtime):
    assert isinstance(space, ModelRuntime) and space.latent_dim == 4 and space.task == "linear"
    images = LinearRuntime.render(np.array([START, GOAL]))
    np.testing.assert_allclose(space.encode(images), 2 * linear_runtime.encode(images))
    state = space.initial_state(1)
    np.testing.assert_array_equal(state[RECENT_ACTIONS], np.zeros((1, 2, 2)))
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 6, 2)).astype(np.float32)
    state = space.observe(state, images[:1], np.zeros((1, 2), np.float32))
    np.testing.assert_allclose(space.imagine(state, actions), 2 * linear_runtime.imagine(state, actions), atol=1e-5)
    np.testing.assert_allclose(space.latent(state), 2 * START[None], atol=1e-5)


def test_observe_keeps_the_executed_actions_newest_first_and_mutates_nothing(space):
    image = LinearRuntime.render(START[None])
    first, second = np.array([[0.1, 0.2]], np.float32), np.array([[0.3, 0.4]], np.float32)
    start = space.initial_state(1)
    after_one = space.observe(start, image, first)
    after_two = space.observe(after_one, image, second)
    np.testing.assert_array_equal(after_two[RECENT_ACTIONS][0], [second[0], first[0]])
    np.testing.assert_array_equal(after_one[RECENT_ACTIONS][0], [first[0], [0, 0]])
    np.testing.assert_array_equal(start[RECENT_ACTIONS], np.zeros((1, 2, 2)))
    actions = np.zeros((3, 4, 2), np.float32)
    space.imagine(after_two, actions)
    # the population's rollouts all start from the belief's recent actions
    np.testing.assert_array_equal(space.dynamics.recent_given[-1], np.repeat(after_two[RECENT_ACTIONS], 3, 0))


def test_latent_mpc_reaches_the_goal_imagining_in_the_state(space, linear_runtime):
    controller = LatentMPC(space, make_optimizer("cem"), StateCost(None, distance_to_goal), MPCConfig.preset("cpu"))
    final, states, actions = run_closed_loop(controller, START, GOAL, steps=25)
    assert np.linalg.norm(final - GOAL) < 0.1 * np.linalg.norm(START - GOAL)
    assert linear_runtime.imagine_calls == 0  # plans were rolled out by the state dynamics alone
    np.testing.assert_array_equal(states[-1]["belief"][RECENT_ACTIONS][0, 0], actions[-2])


def test_proprioception_replaces_the_readout_where_it_measures(linear_runtime):
    space = StateSpaceRuntime(linear_runtime, ScaledReadout(), LinearStateDynamics(), proprio_dims=(0, 1))
    image = LinearRuntime.render(START[None])
    state = space.observe(space.initial_state(1), image, np.zeros((1, 2), np.float32))
    np.testing.assert_allclose(space.latent(state), 2 * START[None], atol=1e-5)  # nothing measured yet: the readout
    measured = space.observe_proprio(state, np.array([[0.25, -0.75, 9.0]], np.float32))  # extra values are ignored
    np.testing.assert_allclose(space.latent(measured), [[0.25, -0.75, 2 * START[2], 2 * START[3]]], atol=1e-5)
    assert np.isnan(state[PROPRIO]).all()  # observe_proprio returned a new state
    # the measurement is kept through the next image until the next measurement, and starts every rollout
    later = space.observe(measured, image, np.zeros((1, 2), np.float32))
    np.testing.assert_array_equal(later[PROPRIO], [[0.25, -0.75]])
    path = space.imagine(later, np.zeros((3, 1, 2), np.float32))
    first_step = [0.25 + 0.5 * 2 * START[2], -0.75 + 0.5 * 2 * START[3]]  # measured position + half a velocity
    np.testing.assert_allclose(path[:, 0, :2], np.repeat([first_step], 3, 0), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 finite values"):
        space.observe_proprio(state, np.array([[np.nan, 0.0]], np.float32))
    with pytest.raises(ValueError, match="proprio: expected shape"):
        space.observe_proprio(state, np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="proprio_dims: expected state dims in"):
        StateSpaceRuntime(linear_runtime, ScaledReadout(), LinearStateDynamics(), proprio_dims=(4,))


def test_latent_mpc_hands_proprioception_to_the_runtime(linear_runtime):
    space = StateSpaceRuntime(linear_runtime, ScaledReadout(), LinearStateDynamics(), proprio_dims=(0, 1))
    controller = LatentMPC(space, make_optimizer("cem"), StateCost(None, distance_to_goal),
                           MPCConfig.preset("cpu", proprio=True))
    state = controller.reset(LinearRuntime.render(GOAL[None])[0])
    obs = {"image": LinearRuntime.render(START[None])[0], "state": np.array([0.1, 0.2, 0.0, 0.0], np.float32)}
    state, _ = controller.act(state, obs)
    np.testing.assert_array_equal(state["belief"][PROPRIO], obs["state"][None, :2])
    with pytest.raises(KeyError, match="expected a 'state' entry"):
        controller.act(state, {"image": obs["image"]})
    with pytest.raises(TypeError, match="has no observe_proprio"):
        LatentMPC(linear_runtime, make_optimizer("cem"), StateCost(None, distance_to_goal), MPCConfig(proprio=True))
    without_dims = LatentMPC(StateSpaceRuntime(linear_runtime, ScaledReadout(), LinearStateDynamics()),
                             make_optimizer("cem"), StateCost(None, distance_to_goal), MPCConfig(proprio=True))
    with pytest.raises(TypeError, match="built without proprio_dims"):
        without_dims.act(without_dims.reset(obs["image"]), obs)


def test_errors_name_what_is_wrong(space, linear_runtime):
    with pytest.raises(TypeError, match="have no image"):
        space.decode(np.zeros((1, 4), np.float32))
    with pytest.raises(KeyError, match="'recent_actions' and 'proprio' entries"):
        space.imagine(linear_runtime.initial_state(1), np.zeros((1, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"state\['recent_actions'\]"):
        space.imagine({**space.initial_state(1), RECENT_ACTIONS: np.zeros((1, 1, 2), np.float32)},
                      np.zeros((1, 3, 2), np.float32))
    other_task = LinearStateDynamics()
    other_task.task = "push"
    with pytest.raises(ValueError, match="trained on task 'push'"):
        StateSpaceRuntime(linear_runtime, ScaledReadout(), other_task)
    wrong_actions = LinearStateDynamics()
    wrong_actions.action_dim = 3
    with pytest.raises(ValueError, match="3-dim actions"):
        StateSpaceRuntime(linear_runtime, ScaledReadout(), wrong_actions)
    with pytest.raises(TypeError, match="StateDynamics"):
        StateSpaceRuntime(linear_runtime, ScaledReadout(), object())
