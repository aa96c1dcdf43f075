"""Gradient plan refinement: cost gradients against finite differences, convergence on a linear system."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.planners import make_optimizer
from hvp.planners.costs import (ActionMagnitude, ActionSmoothness, LatentDistance, PixelMSE, WeightedSum,
                                differentiable)
from hvp.planners.gradient import refine_plan
from hvp.planners.mpc import LatentMPC, MPCConfig

TERMS = [LatentDistance("last"), LatentDistance("all", discount=0.8), ActionMagnitude(), ActionSmoothness(),
         WeightedSum(((1.0, LatentDistance("all")), (0.3, ActionSmoothness())))]


def finite_difference(function, value: np.ndarray, epsilon: float = 1e-4) -> np.ndarray:
    grads = np.zeros_like(value, dtype=np.float64)
    for index in np.ndindex(value.shape):
        up, down = value.astype(np.float64), value.astype(np.float64)
        up[index] += epsilon
        down[index] -= epsilon
        grads[index] = (function(up).sum() - function(down).sum()) / (2 * epsilon)
    return grads


@pytest.mark.parametrize("term", TERMS, ids=lambda term: type(term).__name__)
def test_each_cost_gradient_matches_finite_differences(term):
    rng = np.random.default_rng(0)
    latents, actions, target = rng.normal(size=(3, 4, 5)), rng.uniform(-1, 1, (3, 4, 2)), rng.normal(size=5)
    latent_grads, action_grads = term.gradient(latents, actions, target)
    np.testing.assert_allclose(latent_grads, finite_difference(lambda x: term(x, actions, target), latents), atol=1e-4)
    np.testing.assert_allclose(action_grads, finite_difference(lambda a: term(latents, a, target), actions), atol=1e-4)


def test_the_linear_runtimes_vjp_matches_finite_differences(linear_runtime):
    rng = np.random.default_rng(1)
    state = {"latent": rng.normal(size=(1, 4)).astype(np.float32)}
    actions, latent_grads = rng.uniform(-1, 1, (2, 6, 2)), rng.normal(size=(2, 6, 4))
    _, vjp = linear_runtime.imagine_vjp(state, actions.astype(np.float32))
    expected = finite_difference(lambda a: linear_runtime.imagine(state, a) * latent_grads, actions)
    np.testing.assert_allclose(vjp(latent_grads.astype(np.float32)), expected, atol=1e-3)


def test_refinement_reaches_the_least_squares_optimum_of_a_linear_system(linear_runtime):
    """Quadratic cost over linear dynamics: the optimal plan solves a least-squares problem exactly."""
    horizon, target = 6, np.array([0.3, -0.2, 0.0, 0.0], np.float32)
    state = {"latent": np.zeros((1, 4), np.float32)}
    cost = LatentDistance("all")
    # imagine() is linear in the actions: latents = M u, so the optimum is lstsq(M, target) per weighted step
    basis = np.eye(horizon * 2, dtype=np.float32).reshape(-1, horizon, 2)
    columns = linear_runtime.imagine(state, basis).reshape(len(basis), -1).T  # [H*4, H*2]
    optimum, *_ = np.linalg.lstsq(columns, np.tile(target, horizon), rcond=None)
    best_cost = cost(linear_runtime.imagine(state, optimum.reshape(1, horizon, 2).astype(np.float32)),
                     optimum.reshape(1, horizon, 2), target)[0]
    assert np.abs(optimum).max() < 1  # inside the action bounds, so the constrained optimum is the same
    start = np.zeros((horizon, 2), np.float32)
    start_cost = cost(linear_runtime.imagine(state, start[None]), start[None], target)[0]
    plan, refined_cost = refine_plan(start, state, linear_runtime, cost, target, steps=400, step_size=0.05)
    assert plan.shape == (horizon, 2) and np.abs(plan).max() <= 1
    assert refined_cost < best_cost + 0.02 * (start_cost - best_cost)


def test_refinement_never_returns_a_dearer_plan(linear_runtime):
    state, target = {"latent": np.zeros((1, 4), np.float32)}, np.array([0.5, 0.5, 0, 0], np.float32)
    plan = np.random.default_rng(2).uniform(-1, 1, (5, 2)).astype(np.float32)
    cost = LatentDistance("last")
    given = cost(linear_runtime.imagine(state, plan[None]), plan[None], target)[0]
    _, refined = refine_plan(plan, state, linear_runtime, cost, target, steps=1, step_size=5.0)  # a wild step
    assert refined <= given


def test_mpc_with_gradient_steps_plans_better_than_without(linear_runtime):
    target_image = linear_runtime.render(np.array([[0.4, -0.3, 0, 0]]))[0]
    start = {"image": linear_runtime.render(np.zeros((1, 4)))[0]}
    costs = {}
    for steps in (0, 20):
        mpc = LatentMPC(linear_runtime, make_optimizer("cem", preset="debug"), LatentDistance("all"),
                        MPCConfig(horizon=6, gradient_steps=steps))
        state, _ = mpc.act(mpc.reset(target_image, seed=0), start)
        costs[steps] = state["plan_cost"]
    assert costs[20] < costs[0]


def test_gradient_steps_need_a_differentiable_runtime_and_cost(linear_runtime):
    assert not differentiable(PixelMSE(linear_runtime))
    with pytest.raises(TypeError, match="gradient_steps: the cost"):
        LatentMPC(linear_runtime, make_optimizer("cem", preset="debug"), PixelMSE(linear_runtime),
                  MPCConfig(gradient_steps=3))

    class NoGradients:  # the runtime contract without imagine_vjp (like onnxruntime's)
        image_shape, action_dim, latent_dim = linear_runtime.image_shape, 2, 4
        initial_state, encode, observe = linear_runtime.initial_state, linear_runtime.encode, linear_runtime.observe
        imagine, decode, latent = linear_runtime.imagine, linear_runtime.decode, linear_runtime.latent

    with pytest.raises(TypeError, match="has no imagine_vjp"):
        LatentMPC(NoGradients(), make_optimizer("cem", preset="debug"), LatentDistance(), MPCConfig(gradient_steps=3))
