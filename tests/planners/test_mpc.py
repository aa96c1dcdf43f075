"""LatentMPC in closed loop: on an exactly linear latent system (known optimum) with
every optimizer, and on the real MuJoCo maze with a hand-made pixel runtime."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import LinearRuntime, step_true_system

from hvp.planners import make_optimizer
from hvp.planners.costs import LatentDistance
from hvp.planners.mpc import LatentMPC, MPCConfig, shift_carry, shift_plan

START = np.array([0.6, -0.5, 0.0, 0.0])
GOAL = np.array([-0.4, 0.3, 0.0, 0.0])
# Every step weighted: a last-step-only cost leaves the first actions free, and the
# receding horizon then dithers around the goal.
REACH = LatentDistance("all")
# Final error allowed, as a share of the start's. Random shooting is the weak baseline;
# CMA-ES restarts every step and learns little covariance in 3 generations.
TOLERANCE = {"random": 0.2, "cem": 0.1, "icem": 0.1, "mppi": 0.1, "cmaes": 0.2}


def run_closed_loop(controller: LatentMPC, start: np.ndarray, goal: np.ndarray, steps: int):
    """-> (final true state, controller states per step, actions [steps, A])."""
    state = controller.reset(LinearRuntime.render(goal[None])[0])
    true_state, states, actions = start.copy(), [], []
    action = None
    for _ in range(steps):
        state, action = controller.act(state, {"image": LinearRuntime.render(true_state[None])[0]})
        true_state = step_true_system(true_state, action)
        states.append(state)
        actions.append(action)
    return true_state, states, np.array(actions)


@pytest.mark.parametrize("name", sorted(TOLERANCE))
def test_reaches_the_goal_of_a_linear_latent_system(name, linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer(name), REACH, MPCConfig.preset("cpu"))
    final, states, actions = run_closed_loop(controller, START, GOAL, steps=25)
    assert np.linalg.norm(final - GOAL) < TOLERANCE[name] * np.linalg.norm(START - GOAL)
    assert np.all(np.abs(actions) <= 1) and actions.dtype == np.float32
    # One imagine() per optimizer iteration for the whole population, and nothing else in act().
    assert linear_runtime.imagine_calls == 3 * len(states)


def test_imagined_latents_are_what_the_model_predicts_for_the_plan(linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer("cem"), LatentDistance(), MPCConfig(replan_every=3))
    state = controller.reset(LinearRuntime.render(GOAL[None])[0])
    state, _ = controller.act(state, {"image": LinearRuntime.render(START[None])[0]})
    expected, true_state = [], START.copy()
    for action in state["plan"]:
        true_state = step_true_system(true_state, action)
        expected.append(true_state)
    np.testing.assert_allclose(controller.imagined(state), np.array(expected), atol=1e-5)
    assert state["plan_seconds"] > 0 and np.isfinite(state["plan_cost"])


def test_replans_every_k_steps_and_executes_the_plan_in_between(linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer("cem", preset="debug"), LatentDistance(),
                           MPCConfig(horizon=6, replan_every=3))
    _, states, actions = run_closed_loop(controller, START, GOAL, steps=7)
    replanned = [s["plan_seconds"] > 0 for s in states]
    assert replanned == [True, False, False, True, False, False, True]
    np.testing.assert_array_equal(actions[:3], states[0]["plan"][:3])
    np.testing.assert_array_equal(actions[3:6], states[3]["plan"][:3])


def test_act_returns_a_new_state_and_leaves_the_given_one_alone(linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer("icem", preset="debug"), LatentDistance())
    state = controller.reset(LinearRuntime.render(GOAL[None])[0], seed=3)
    state, _ = controller.act(state, {"image": LinearRuntime.render(START[None])[0]})
    before = copy.deepcopy(state)
    image = LinearRuntime.render(START[None] * 0.9)[0]
    first, action = controller.act(state, {"image": image})
    again, same_action = controller.act(state, {"image": image})  # same state in: same decision out
    np.testing.assert_array_equal(action, same_action)
    for key in ("plan", "goal", "target", "last_action"):
        np.testing.assert_array_equal(state[key], before[key])
    assert state["step"] == 1 and first["step"] == 2 and first["carry"]["elites"].shape[1:] == (10, 2)


def test_set_target_steers_toward_a_subgoal(linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer("cem"), REACH, MPCConfig(replan_every=5))
    state = controller.reset(LinearRuntime.render(GOAL[None])[0])
    subgoal = np.array([0.5, 0.5, 0.0, 0.0], np.float32)
    true_state = START.copy()
    for _ in range(2):  # mid-plan toward the goal
        state, action = controller.act(state, {"image": LinearRuntime.render(true_state[None])[0]})
        true_state = step_true_system(true_state, action)
    state = controller.set_target(state, subgoal)
    state, action = controller.act(state, {"image": LinearRuntime.render(true_state[None])[0]})
    assert state["plan_seconds"] > 0 and state["age"] == 1  # a new target means a new plan at once
    true_state = step_true_system(true_state, action)
    for _ in range(20):
        state, action = controller.act(state, {"image": LinearRuntime.render(true_state[None])[0]})
        true_state = step_true_system(true_state, action)
    assert np.linalg.norm(true_state - subgoal) < 0.1
    np.testing.assert_array_equal(state["goal"], LinearRuntime().encode(LinearRuntime.render(GOAL[None]))[0])
    with pytest.raises(ValueError, match=r"latent: expected shape \(4,\)"):
        controller.set_target(state, subgoal[:2])


def test_shift_plan_advances_and_repeats_the_last_action():
    plan = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(shift_plan(plan, 1), [[2, 3], [4, 5], [6, 7], [6, 7]])
    np.testing.assert_array_equal(shift_plan(plan, 9), np.repeat(plan[-1:], 4, axis=0))
    shifted = shift_carry({"elites": np.stack([plan, -plan])}, 2)["elites"]
    np.testing.assert_array_equal(shifted[1], -shift_plan(plan, 2))


def test_bad_inputs_name_the_argument(linear_runtime):
    controller = LatentMPC(linear_runtime, make_optimizer("cem"), LatentDistance())
    with pytest.raises(ValueError, match=r"goal_image: expected shape \(1, 4, 3\)"):
        controller.reset(np.zeros((64, 64, 3), np.uint8))
    state = controller.reset(LinearRuntime.render(GOAL[None])[0])
    with pytest.raises(TypeError, match=r'obs\["image"\]: expected dtype uint8, got float32'):
        controller.act(state, {"image": np.zeros((1, 4, 3), np.float32)})
    with pytest.raises(KeyError, match="obs: expected an 'image' entry"):
        controller.act(state, {"state": np.zeros(4, np.float32)})
    with pytest.raises(TypeError, match="optimizer: expected an hvp.contracts.Optimizer"):
        LatentMPC(linear_runtime, object(), LatentDistance())
    with pytest.raises(ValueError, match="replan_every must be in"):
        MPCConfig(horizon=4, replan_every=5)
