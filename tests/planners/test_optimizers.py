"""Every registered optimizer on problems with known optima, plus the contract every
optimizer owes its caller: bounds, NaN handling, one batched call per iteration,
determinism, deadlines, action repeat."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from hvp.config import ConfigError
from hvp.contracts import Optimizer
from hvp.planners import OPTIMIZERS, make_optimizer

NAMES = ["random", "cem", "icem", "mppi", "cmaes"]
HORIZON, ACTION_DIM = 4, 2
# Iterations to converge on the 8-dimensional problems below; random shooting only
# gets a low-dimensional problem, where uniform sampling can find the optimum; iCEM
# gets more iterations because its population shrinks to 2 * elites.
CONVERGE_ITERATIONS = {"random": 10, "cem": 10, "icem": 20, "mppi": 10, "cmaes": 25}
# MPPI's temperature is in cost units; these problems' costs spread over about 10.
CONVERGE_OVERRIDES = {"mppi": dict(temperature=2.0)}


def converging(name: str, iteration_factor: int = 1, **overrides):
    settings = {**CONVERGE_OVERRIDES.get(name, {}), **overrides}
    return make_optimizer(name, iterations=iteration_factor * CONVERGE_ITERATIONS[name], **settings)


def zeros(horizon: int = HORIZON, action_dim: int = ACTION_DIM) -> np.ndarray:
    return np.zeros((horizon, action_dim), np.float32)


def quadratic(target: np.ndarray):
    """cost(actions [N, H, A]) = squared distance to `target` [H, A]: optimum at clip(target)."""
    return lambda actions: np.sum((actions - target) ** 2, axis=(1, 2))


def problem_shape(name: str) -> tuple[int, int]:
    return (2, 1) if name == "random" else (HORIZON, ACTION_DIM)


@pytest.mark.parametrize("name", NAMES)
def test_registered_optimizers_fit_the_contract(name):
    assert isinstance(make_optimizer(name, preset="debug"), Optimizer)
    assert set(NAMES) <= set(OPTIMIZERS.names())


@pytest.mark.parametrize("name", NAMES)
def test_converges_to_an_interior_optimum(name):
    shape = problem_shape(name)
    target = np.random.default_rng(1).uniform(-0.6, 0.6, shape).astype(np.float32)
    optimizer = converging(name)
    result = optimizer.optimize(quadratic(target), zeros(*shape), np.random.default_rng(0))
    assert result.plan.shape == shape and result.plan.dtype == np.float32
    assert np.abs(result.plan - target).max() < 0.12
    assert result.cost < 0.02
    assert result.iterations == CONVERGE_ITERATIONS[name]


@pytest.mark.parametrize("name", NAMES)
def test_bound_constrained_optimum_lies_on_the_bounds(name):
    shape = problem_shape(name)
    target = np.where(np.arange(np.prod(shape)).reshape(shape) % 2 == 0, 1.8, -2.5).astype(np.float32)
    # A corner of the box, a unit away from the start in every coordinate: twice the iterations.
    optimizer = converging(name, iteration_factor=2)
    result = optimizer.optimize(quadratic(target), zeros(*shape), np.random.default_rng(0))
    assert np.all(np.abs(result.plan) <= 1.0)
    assert np.abs(result.plan - np.clip(target, -1, 1)).max() < 0.1


def linear_system_problem():
    """A double integrator driven to a target: cost = |x_H - goal|^2 + 0.01 |u|^2, a convex quadratic in u.

    Returns (cost_fn, optimal cost) where the optimum comes from least squares; the
    goal is chosen so the optimal actions lie well inside [-1, 1].
    """
    dynamics = np.array([[1, 0, 0.5, 0], [0, 1, 0, 0.5], [0, 0, 0.9, 0], [0, 0, 0, 0.9]])
    control = np.array([[0, 0], [0, 0], [0.4, 0], [0, 0.4]])
    start, goal, reg = np.array([0.1, -0.1, 0.0, 0.0]), np.array([-0.15, 0.15, 0.0, 0.0]), 0.01
    # x_H = dynamics^H start + sum_t dynamics^(H-1-t) control u_t
    blocks = [np.linalg.matrix_power(dynamics, HORIZON - 1 - t) @ control for t in range(HORIZON)]
    response = np.concatenate(blocks, axis=1)  # [4, H*A]
    free = np.linalg.matrix_power(dynamics, HORIZON) @ start
    stacked = np.vstack([response, np.sqrt(reg) * np.eye(HORIZON * ACTION_DIM)])
    rhs = np.concatenate([goal - free, np.zeros(HORIZON * ACTION_DIM)])
    best_u = np.linalg.lstsq(stacked, rhs, rcond=None)[0]
    assert np.abs(best_u).max() < 0.9  # the optimum is interior: the bounds do not bind

    def cost_fn(actions):
        final = free + actions.reshape(len(actions), -1).astype(np.float64) @ response.T
        return np.sum((final - goal) ** 2, axis=1) + reg * np.sum(actions.astype(np.float64) ** 2, axis=(1, 2))

    return cost_fn, float(cost_fn(best_u.reshape(1, HORIZON, ACTION_DIM))[0])


@pytest.mark.parametrize("name", [n for n in NAMES if n != "random"])
def test_drives_a_linear_system_to_its_target(name):
    cost_fn, optimal = linear_system_problem()
    # This problem's costs spread over about 0.1: MPPI's temperature follows.
    optimizer = converging(name, **({"temperature": 0.1} if name == "mppi" else {}))
    result = optimizer.optimize(cost_fn, zeros(), np.random.default_rng(0))
    start_cost = float(cost_fn(zeros()[None])[0])
    assert optimal < result.cost < optimal + 0.04 * (start_cost - optimal)


@pytest.mark.parametrize("name", NAMES)
def test_one_batched_call_per_iteration_within_bounds(name):
    calls = []

    def cost_fn(actions):
        calls.append(actions)
        return np.sum((actions - 3.0) ** 2, axis=(1, 2))  # pulls outside the bounds

    result = make_optimizer(name, preset="debug").optimize(cost_fn, zeros(), np.random.default_rng(0))
    assert len(calls) == result.iterations == 2
    for actions in calls:
        assert actions.ndim == 3 and actions.shape[1:] == (HORIZON, ACTION_DIM) and actions.dtype == np.float32
        assert np.all((actions >= -1) & (actions <= 1))
    assert len(calls[0]) >= 16  # the whole population in one call (debug preset: 32, iCEM adds elites)


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_costs_count_as_worst(name):
    target = np.full((HORIZON, ACTION_DIM), -0.3, np.float32)

    def cost_fn(actions):  # undefined wherever the first action's first component is positive
        cost = np.sum((actions - target) ** 2, axis=(1, 2))
        cost[actions[:, 0, 0] > 0] = np.nan
        cost[actions[:, 0, 1] > 0.5] = np.inf
        return cost

    optimizer = converging(name)
    result = optimizer.optimize(cost_fn, zeros(), np.random.default_rng(0))
    assert np.isfinite(result.cost)
    assert result.plan[0, 0] <= 0.05 and result.plan[0, 1] <= 0.55


@pytest.mark.parametrize("name", NAMES)
def test_all_costs_undefined_still_returns_a_plan_in_bounds(name):
    result = make_optimizer(name, preset="debug").optimize(
        lambda actions: np.full(len(actions), np.nan), zeros(), np.random.default_rng(0))
    assert result.cost == np.inf
    assert np.all(np.isfinite(result.plan)) and np.all(np.abs(result.plan) <= 1)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_plan_other_seed_other_plan(name):
    optimizer = make_optimizer(name, preset="debug")
    cost_fn = quadratic(np.full((HORIZON, ACTION_DIM), 0.7, np.float32))
    first = optimizer.optimize(cost_fn, zeros(), np.random.default_rng(7))
    np.random.seed(123)  # numpy's global state must play no part
    again = optimizer.optimize(cost_fn, zeros(), np.random.default_rng(7))
    other = optimizer.optimize(cost_fn, zeros(), np.random.default_rng(8))
    np.testing.assert_array_equal(first.plan, again.plan)
    assert not np.array_equal(first.plan, other.plan)


@pytest.mark.parametrize("name", NAMES)
def test_deadline_stops_early_with_the_best_so_far(name):
    def slow_cost(actions):
        time.sleep(0.02)
        return np.sum(actions**2, axis=(1, 2))

    optimizer = make_optimizer(name, preset="debug", iterations=50)
    started = time.perf_counter()
    result = optimizer.optimize(slow_cost, zeros(), np.random.default_rng(0), deadline=started + 0.1)
    elapsed = time.perf_counter() - started
    assert 1 <= result.iterations < 10
    assert elapsed < 0.1 + 0.03  # overrun at most about one iteration's jitter
    assert np.isfinite(result.cost)
    # A deadline already passed still gets one iteration: there is always a plan.
    late = optimizer.optimize(slow_cost, zeros(), np.random.default_rng(0), deadline=time.perf_counter() - 1)
    assert late.iterations == 1


@pytest.mark.parametrize("name", NAMES)
def test_action_repeat_holds_each_action(name):
    seen = []

    def cost_fn(actions):
        seen.append(actions)
        return np.sum((actions - 0.4) ** 2, axis=(1, 2))

    result = make_optimizer(name, preset="debug", action_repeat=3).optimize(
        cost_fn, zeros(horizon=7), np.random.default_rng(0))
    assert result.plan.shape == (7, ACTION_DIM)
    for plans in [*seen, result.plan[None]]:
        assert plans.shape[1] == 7
        np.testing.assert_array_equal(plans[:, 0], plans[:, 2])
        np.testing.assert_array_equal(plans[:, 3], plans[:, 5])
        np.testing.assert_array_equal(plans[:, 6], plans[:, 6])
    assert not np.array_equal(seen[0][:, 2], seen[0][:, 3])


def test_icem_carries_elites_across_calls():
    target = np.random.default_rng(3).uniform(-0.8, 0.8, (HORIZON, ACTION_DIM)).astype(np.float32)
    icem = make_optimizer("icem", iterations=1)
    cold = icem.optimize(quadratic(target), zeros(), np.random.default_rng(0))
    assert cold.carry["elites"].shape == (5, HORIZON, ACTION_DIM)  # round(0.3 * 16) elites kept
    # Carried elites that contain the optimum are evaluated again and win.
    carry = {"elites": np.concatenate([target[None], cold.carry["elites"][1:]])}
    warm = icem.optimize(quadratic(target), zeros(), np.random.default_rng(0), carry=carry)
    assert warm.cost == pytest.approx(0.0, abs=1e-10) and cold.cost > 0.1
    np.testing.assert_allclose(warm.plan, target)


def test_icem_rejects_a_carry_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r'carry\["elites"\]: expected shape'):
        make_optimizer("icem").optimize(quadratic(zeros()), zeros(), np.random.default_rng(0),
                                        carry={"elites": np.zeros((3, HORIZON + 1, ACTION_DIM), np.float32)})


def test_bad_inputs_name_the_argument():
    optimizer = make_optimizer("cem")
    with pytest.raises(ValueError, match="init_mean: expected shape"):
        optimizer.optimize(quadratic(zeros()), np.zeros(4, np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="init_mean: expected finite"):
        optimizer.optimize(quadratic(zeros()), np.full((4, 2), np.nan, np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"cost_fn: expected costs of shape \(128,\)"):
        optimizer.optimize(lambda actions: np.zeros(3), zeros(), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="elites must be in"):
        make_optimizer("cem", elites=500)
    with pytest.raises(KeyError, match="unknown optimizer 'nope'; known: cem, cmaes"):
        make_optimizer("nope")


def test_users_can_register_their_own_optimizer():
    class Zero:
        def optimize(self, cost_fn, init_mean, rng, carry=None, deadline=None):
            from hvp.contracts import OptimizerResult
            return OptimizerResult(np.zeros_like(init_mean), float(cost_fn(init_mean[None] * 0)[0]))

    OPTIMIZERS.register("zero-test", lambda preset="cpu", **overrides: Zero(), overwrite=True)
    assert make_optimizer("zero-test").optimize(quadratic(zeros()), zeros(), None).cost == 0.0


def test_planners_import_without_torch_or_simulators():
    """The robot computer has numpy + onnxruntime only: hvp.planners must not pull torch, hvp.sim or hvp.models."""
    code = ("import sys, hvp.planners, hvp.planners.mpc; "
            "print(sorted(m for m in ('torch', 'mujoco', 'hvp.sim', 'hvp.models', 'hvp.real') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
