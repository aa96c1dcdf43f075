"""The playground API on a real debug RSSM and maze-easy, and the extension points' contract probes."""
from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from playground_fixtures import debug_run, held_out_file, maze_episodes  # noqa: F401 (fixtures)

import hvp
from hvp.contracts import OptimizerResult
from hvp.extension import (ContractError, check_env, check_optimizer, check_runtime, make_model, make_subgoal_generator,
                           register_env, register_model, register_optimizer, register_subgoal_generator)
from hvp.models.runtime import TorchRuntime


@pytest.fixture(scope="module")
def runtime(debug_run) -> TorchRuntime:
    return hvp.load_model(debug_run, threads=1)


@pytest.fixture(scope="module")
def filtered(runtime, maze_episodes):
    """A state after two real frames."""
    episode = maze_episodes[0]
    state = runtime.initial_state(1)
    for t in range(2):
        state = hvp.observe(runtime, state, episode["image"][t], episode["action"][t - 1] * (t > 0))
    return state


def test_import_hvp_loads_neither_torch_nor_mujoco():
    code = ("import sys, hvp, hvp.playground as wm; assert hvp.predict is wm.predict; "
            "print(sorted({'torch', 'mujoco'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_observe_single_frame_equals_the_batched_runtime_call(runtime, maze_episodes):
    image, action = maze_episodes[0]["image"][1], maze_episodes[0]["action"][0]
    state = runtime.initial_state(1)
    before = {key: value.copy() for key, value in state.items()}
    single = hvp.observe(runtime, state, image, action)
    batched = runtime.observe(state, image[None], action[None])
    assert all(np.array_equal(single[key], batched[key]) for key in batched)
    assert all(np.array_equal(state[key], before[key]) for key in state)
    assert not np.array_equal(single["deter"], state["deter"])  # the frame was seen


def test_predict_shapes_and_state_untouched(runtime, filtered):
    before = {key: value.copy() for key, value in filtered.items()}
    actions = np.random.default_rng(0).uniform(-1, 1, (3, 4, 2)).astype(np.float32)
    future = hvp.predict(runtime, filtered, actions)
    assert future["latents"].shape == (3, 4, runtime.latent_dim) and future["latents"].dtype == np.float32
    assert future["images"].shape == (3, 4, 64, 64, 3) and future["images"].dtype == np.uint8
    one = hvp.predict(runtime, filtered, actions[1])
    np.testing.assert_allclose(one["latents"], future["latents"][1], atol=1e-5)
    assert one["images"].shape == (4, 64, 64, 3)
    assert all(np.array_equal(filtered[key], before[key]) for key in filtered)


def test_predict_protects_the_state_from_a_runtime_that_writes_into_it(runtime, filtered):
    class Scribbler(TorchRuntime):
        def imagine(self, state, actions):
            latents = super().imagine(state, actions)
            state["deter"][:] = 7.0  # a user model that reuses its input buffers
            return latents

    before = filtered["deter"].copy()
    hvp.predict(Scribbler(runtime.model, threads=1), filtered, np.zeros((2, 2), np.float32))
    assert np.array_equal(filtered["deter"], before)


def test_plan_to_goal_flat_with_own_goal_image(runtime, maze_episodes):
    goal = maze_episodes[1]["image"][-1]
    result = hvp.plan_to_goal("maze-easy", runtime, goal, preset="debug", horizon=3, max_steps=3, seed=2, record=True)
    assert result["steps"] == 3 or result["success"]
    assert result["act_ms"].shape == (result["steps"],) and np.all(result["act_ms"] > 0)
    frames = result["frames"]
    assert frames.shape == (result["steps"] + 1, 192, 768, 3)
    np.testing.assert_array_equal(frames[0, ::3, 576::3], goal)  # the goal panel shows the caller's goal


def test_plan_to_goal_hierarchical_is_explicit_about_what_is_missing(runtime, debug_run):
    # a runtime object has no distance or subgoal model beside it; a run without them names the command
    with pytest.raises(NotImplementedError, match="run directory"):
        hvp.plan_to_goal("maze-easy", runtime, hierarchical=True, max_steps=2)
    with pytest.raises(FileNotFoundError, match="generated subgoals needs .*distance; make it with hvp train-distance"):
        hvp.plan_to_goal("maze-easy", debug_run, hierarchical=True, max_steps=2)
    with pytest.raises(FileNotFoundError, match="graph_nodes.safetensors; make it with hvp graph-nodes"):
        hvp.plan_to_goal("maze-easy", debug_run, hierarchical=True, subgoals="graph", max_steps=2)


def test_plan_to_goal_hierarchical_uses_the_runs_graph_nodes(debug_run, held_out_file, tmp_path):
    import shutil

    from hvp.cli import main

    run = shutil.copytree(debug_run, tmp_path / "run")  # the shared run stays without nodes
    assert main(["graph-nodes", str(run), "--data", held_out_file]) == 0
    result = hvp.plan_to_goal("maze-easy", str(run), hierarchical=True, max_steps=3)  # auto: graph, no distance/
    assert result["steps"] >= 1 and len(result["act_ms"]) == result["steps"]


# -- extension points ---------------------------------------------------------------------------------
def test_check_runtime_accepts_the_torch_runtime_and_names_what_a_broken_one_lacks(runtime):
    assert check_runtime(runtime) is runtime

    class NoDecode:
        image_shape, action_dim, latent_dim = (8, 8, 3), 2, 4
        initial_state = encode = observe = imagine = latent = staticmethod(lambda *args: None)

    with pytest.raises(ContractError, match=r"missing decode; implement decode\(latents"):
        check_runtime(NoDecode())

    class ShortImagine(TorchRuntime):
        def imagine(self, state, actions):
            return super().imagine(state, actions)[:, :1]

    with pytest.raises(ContractError, match=r"ShortImagine.imagine returned float32 \(3, 1, \d+\); expected float32 "
                                            r"\(3, 2, \d+\)\. Implement imagine"):
        check_runtime(ShortImagine(runtime.model, threads=1))

    class FloatImages(TorchRuntime):
        def decode(self, latents):
            return super().decode(latents).astype(np.float32) / 255

    with pytest.raises(ContractError, match=r"decode returned float32 .* expected uint8"):
        check_runtime(FloatImages(runtime.model, threads=1))

    class InPlaceObserve(TorchRuntime):
        def observe(self, state, images, actions):
            new = super().observe(state, images, actions)
            state["deter"] += 1.0
            return new

    with pytest.raises(ContractError, match="observe changed the state it was given"):
        check_runtime(InPlaceObserve(runtime.model, threads=1))


def test_registered_model_is_checked_at_first_make(runtime):
    register_model("test-good-model", lambda: runtime)
    assert make_model("test-good-model") is runtime
    assert hvp.load_model("test-good-model") is runtime
    register_model("test-bad-model", lambda: object())
    with pytest.raises(ContractError, match="no attribute 'image_shape'"):
        make_model("test-bad-model")


class GoallessEnv(gym.Env):
    """An env a newcomer might write: images and state, but no goal image."""

    observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                         "state": gym.spaces.Box(-1, 1, (2,), np.float32)})
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        return {"image": np.zeros((8, 8, 3), np.uint8), "state": np.zeros(2, np.float32)}, {}

    def step(self, action):
        return self.reset()[0], 0.0, False, False, {"success": False, "distance": 1.0}


def test_env_without_goal_image_is_refused_at_first_make():
    from hvp.sim import make

    env = make("maze-easy", max_steps=3)
    try:
        assert check_env(env) is env
    finally:
        env.close()
    register_env("test-goalless", GoallessEnv)
    with pytest.raises(ContractError, match=r"GoallessEnv has no goal image: return it as info\['goal_image'\]"):
        make("test-goalless")


def test_registered_optimizer_is_checked_and_then_plans(debug_run, runtime):
    from hvp.agent import build_controller
    from hvp.planners import make_optimizer

    assert check_optimizer(make_optimizer("cem", preset="debug"))

    class PerSample:  # evaluates one sequence per cost call and returns a bare array
        def optimize(self, cost_fn, init_mean, rng, carry=None, deadline=None):
            cost_fn(init_mean)
            return init_mean

    with pytest.raises(ContractError, match=r"called cost_fn with shape \(3, 2\); call it with the whole population"):
        check_optimizer(PerSample())

    class ZeroPlan:
        def optimize(self, cost_fn, init_mean, rng, carry=None, deadline=None):
            return OptimizerResult(init_mean, float(cost_fn(init_mean[None])[0]))

    register_optimizer("test-zero-plan", lambda preset="cpu", **overrides: ZeroPlan())
    controller, _ = build_controller(debug_run, "test-zero-plan", "latent", preset="debug", threads=1)
    state = controller.reset(np.zeros((64, 64, 3), np.uint8))
    _, action = controller.act(state, {"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(4, np.float32)})
    np.testing.assert_array_equal(action, np.zeros(2, np.float32))


def test_subgoal_generators_are_probed():
    generator = make_subgoal_generator("interpolate", latent_dim=4)
    start, goal = np.zeros(4, np.float32), np.full(4, 3.0, np.float32)
    subgoals = generator.propose(start, goal, np.zeros((1, 2, 4), np.float32))
    np.testing.assert_allclose(subgoals[0], [[1.0] * 4, [2.0] * 4])  # evenly spaced on the line without codes

    class Flat:
        code_dim = 2

        def propose(self, start, goal, codes):
            return np.zeros((len(codes), len(start)), np.float32)  # forgot the K axis

    register_subgoal_generator("test-flat", lambda latent_dim: Flat())
    with pytest.raises(ContractError, match=r"returned float32 \(3, 4\); expected float32 \(3, 2, 4\)"):
        make_subgoal_generator("test-flat", latent_dim=4)
