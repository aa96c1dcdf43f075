"""robosuite adapter tasks against the Env contract, with real robosuite physics and MuJoCo rendering.

Each env is built once per module: robosuite model compilation takes seconds.
"""
from __future__ import annotations

import pytest

pytest.importorskip("robosuite")
from adapter_contract import check_contract

from hvp.sim import make  # noqa: E402
from hvp.sim.robosuite_env import scripted_action  # noqa: E402

NAMES = ["robosuite-lift", "robosuite-stack", "robosuite-door"]


@pytest.fixture(scope="module", params=NAMES)
def env(request):
    env = make(request.param, max_steps=4)
    yield env
    env.close()


def test_contract(env):
    check_contract(env, seed=1)


def test_scripted_solution_reaches_the_goal_lift():
    env = make("robosuite-lift")
    try:
        env.reset(seed=1)
        assert env.goal_solved and env.goal[2] > 0.9  # the goal shows the cube lifted
        for _ in range(env.max_steps):
            _, _, terminated, _, info = env.step(scripted_action(env))
            if terminated:
                break
        assert info["success"]
    finally:
        env.close()
