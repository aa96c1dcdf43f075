"""Agent wiring end to end on real MuJoCo: debug world model + temporal distance -> latent MPC -> graded episodes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hvp.agent import RandomActions, build_controller, evaluate, wilson_interval


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    """A debug RSSM trained for a few steps on 4 short maze-easy episodes, with a debug temporal distance."""
    from hvp.data import TrajectoryDataset
    from hvp.models.fit import fit
    from hvp.models.fit_distance import train_distance
    from hvp.simulate import simulate

    episodes = simulate("maze-easy", "explore", 4, env_kwargs={"max_steps": 15}, progress=False)
    dataset = TrajectoryDataset(episodes, {"env_name": "maze-easy"})
    out = tmp_path_factory.mktemp("runs") / "maze"
    fit(dataset, out, preset="debug", train_overrides={"steps": 5}, threads=2, progress=False)
    train_distance(out, dataset, preset="debug", train_overrides={"steps": 20}, held_out=0.25, progress=False)
    return str(out)


@pytest.fixture
def maze_env():
    from hvp.sim import make

    env = make("maze-easy", max_steps=4)
    yield env
    env.close()


def test_mpc_evaluation_writes_summary_and_video(run_dir, maze_env, tmp_path):
    controller, decode = build_controller(run_dir, "cem", "temporal", preset="debug", horizon=3)
    summary = evaluate(maze_env, controller, episodes=2, seed=3, out=tmp_path, videos=1, decode=decode,
                       progress=False, meta={"planner": "cem"})
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["planner"] == "cem" and written["episodes"] == 2 and written["seed"] == 3
    low, high = written["success_ci95"]
    assert 0 <= low <= written["success_rate"] <= high <= 1
    assert [row["seed"] for row in written["per_episode"]] == [3, 4]
    assert all(row["steps"] == 4 or row["success"] for row in written["per_episode"])
    assert written["step_ms_median"] > 0 and written["step_ms_p95"] >= written["step_ms_median"]
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "episode_000.mp4")
    # one frame per act() plus the last, four 64-px panels scaled x3: reality | next | plan end | goal
    assert len(frames) == written["per_episode"][0]["steps"] + 1 and frames[0].shape == (192, 768, 3)
    assert not (tmp_path / "episode_001.mp4").exists()


def test_seeded_runs_repeat(run_dir, maze_env):
    results = []
    for _ in range(2):
        controller, _ = build_controller(run_dir, "cem", "latent", preset="debug", horizon=3)
        results.append(evaluate(maze_env, controller, episodes=1, seed=5, progress=False)["per_episode"])
    assert results[0] == results[1]


def test_cli_plan_with_random_actions(run_dir, tmp_path, capsys):
    from hvp.cli import main

    out = tmp_path / "plan"
    assert main(["plan", "--env", "maze-easy", "--model", run_dir, "--planner", "random-actions", "--cost", "latent",
                 "--episodes", "2", "--max-steps", "3", "--videos", "0", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planner"] == "random-actions" and summary["episodes"] == 2
    assert "success" in capsys.readouterr().out and not list(out.glob("*.mp4"))


def test_random_actions_are_seeded_and_bounded():
    controller, goal = RandomActions(action_dim=2), np.zeros((64, 64, 3), np.uint8)
    first, again, other = (controller.act(controller.reset(goal, seed=s), {})[1] for s in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.float32 and first.shape == (2,) and np.all(np.abs(first) <= 1)


def test_unknown_names_list_the_known_ones(run_dir):
    with pytest.raises(ValueError, match=r"planner: expected one of .*cem.*random-actions.*, got 'annealing'"):
        build_controller(run_dir, "annealing", "latent")
    with pytest.raises(ValueError, match=r"cost: expected one of latent, temporal, pixel, readout, got 'l1'"):
        build_controller(run_dir, "cem", "l1")


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(45, 50)  # textbook: 0.786 .. 0.957
    assert low == pytest.approx(0.7864, abs=1e-3) and high == pytest.approx(0.9565, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_gradient_steps_polish_plans_of_the_torch_model_and_refuse_the_pixel_cost(run_dir, maze_env, tmp_path):
    from hvp.cli import main

    obs, _ = maze_env.reset(seed=0)
    goal = maze_env.unwrapped.goal_image
    plan_costs = {}
    for steps in (0, 4):  # the same seeded CEM, then polished: never dearer
        controller, _ = build_controller(run_dir, "cem", "temporal", preset="debug", horizon=3, gradient_steps=steps)
        assert controller.config.gradient_steps == steps
        state, action = controller.act(controller.reset(goal), obs)
        plan_costs[steps] = state["plan_cost"]
        assert np.all(np.abs(action) <= 1)
    assert plan_costs[4] <= plan_costs[0]
    with pytest.raises(TypeError, match="gradient_steps: the cost"):
        build_controller(run_dir, "cem", "pixel", preset="debug", gradient_steps=2)
    out = tmp_path / "plan"
    assert main(["plan", "--env", "maze-easy", "--model", run_dir, "--cost", "latent", "--preset", "debug",
                 "--gradient-steps", "2", "--episodes", "1", "--max-steps", "2", "--videos", "0", "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["gradient_steps"] == 2


def test_cli_train_readout_then_plan_with_the_task_cost(run_dir, tmp_path, capsys):
    from hvp.cli import main
    from hvp.data import save_trajectories
    from hvp.simulate import simulate

    data = save_trajectories(simulate("maze-easy", "explore", 2, env_kwargs={"max_steps": 10}, progress=False),
                             tmp_path / "maze.hdf5", {"env_name": "maze-easy"})
    readout = tmp_path / "readout"
    assert main(["train-readout", run_dir, "--data", str(data), "--preset", "debug", "--steps", "30",
                 "--held-out", "0", "--out", str(readout), "--no-progress"]) == 0
    assert "task: maze-easy" in capsys.readouterr().out
    out = tmp_path / "plan"
    assert main(["plan", "--env", "maze-easy", "--model", run_dir, "--cost", "readout", "--readout", str(readout),
                 "--preset", "debug", "--episodes", "1", "--max-steps", "3", "--videos", "0", "--out", str(out),
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cost"] == "readout" and summary["per_episode"][0]["steps"] in (1, 2, 3)
    with pytest.raises(Exception, match="hvp train-readout"):  # no RUN/readout: the error says how to make one
        build_controller(run_dir, "cem", "readout", preset="debug")


def test_cli_train_state_dynamics_then_plan_imagining_in_the_state(run_dir, tmp_path, capsys):
    from hvp.cli import main
    from hvp.data import save_trajectories
    from hvp.simulate import simulate

    data = save_trajectories(simulate("maze-easy", "explore", 2, env_kwargs={"max_steps": 10}, progress=False),
                             tmp_path / "maze.hdf5", {"env_name": "maze-easy"})
    readout, dynamics = tmp_path / "readout", tmp_path / "state_dynamics"
    assert main(["train-readout", run_dir, "--data", str(data), "--preset", "debug", "--steps", "30",
                 "--held-out", "0", "--out", str(readout), "--no-progress"]) == 0
    assert main(["train-state-dynamics", run_dir, "--data", str(data), "--preset", "debug", "--steps", "30",
                 "--held-out", "0", "--out", str(dynamics), "--no-progress"]) == 0
    assert "task: maze-easy" in capsys.readouterr().out and (dynamics / "model.safetensors").is_file()
    out = tmp_path / "plan"
    assert main(["plan", "--env", "maze-easy", "--model", run_dir, "--cost", "readout", "--readout", str(readout),
                 "--imagine", "state", "--state-dynamics", str(dynamics), "--preset", "debug", "--episodes", "1",
                 "--max-steps", "3", "--videos", "1", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["imagine"] == "state" and summary["per_episode"][0]["steps"] in (1, 2, 3)
    assert (out / "episode_000.mp4").is_file()
    controller, decode = build_controller(run_dir, "cem", "readout", preset="debug", readout_dir=readout,
                                          imagine="state", dynamics_dir=dynamics)
    assert decode is None and controller.runtime.latent_dim == 2  # the maze's state: the ball's (x, y)
    assert main(["plan", "--env", "maze-easy", "--model", run_dir, "--cost", "readout", "--readout", str(readout),
                 "--imagine", "state", "--state-dynamics", str(dynamics), "--proprio", "--preset", "debug",
                 "--episodes", "1", "--max-steps", "2", "--videos", "0", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["proprio"] is True
    with pytest.raises(ValueError, match="proprio: proprioception enters the read-out state"):
        build_controller(run_dir, "cem", "readout", proprio=True)
    with pytest.raises(SystemExit, match="--hierarchical plans subgoals in the world model's latent"):
        main(["plan", "--env", "maze-easy", "--model", run_dir, "--hierarchical", "--imagine", "state"])
    with pytest.raises(ValueError, match="imagine 'state' plans on the task's state cost"):
        build_controller(run_dir, "cem", "temporal", imagine="state")
    with pytest.raises(ValueError, match="imagine: expected one of latent, state, got 'pixels'"):
        build_controller(run_dir, "cem", "readout", imagine="pixels")
    with pytest.raises(Exception, match="hvp train-state-dynamics"):  # no RUN/state_dynamics: says how to make one
        build_controller(run_dir, "cem", "readout", readout_dir=readout, imagine="state")


def test_state_frames_draw_imagined_states_with_the_simulator(maze_env):
    from hvp.agent import state_frames

    maze_env.reset(seed=1)
    goal = maze_env.unwrapped.goal_state.astype(np.float32)
    frames = state_frames(maze_env, 2)(np.stack([goal, goal + 0.3]))
    assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], maze_env.unwrapped.goal_image)
    assert not np.array_equal(frames[1], frames[0])
    assert state_frames(maze_env, 3) is None  # a state that is not the scene's joint positions is not drawn


def test_planner_policy_collects_on_policy_episodes(run_dir, tmp_path):
    import pickle

    from hvp.data import load_dataset
    from hvp.policies import PlannerPolicy
    from hvp.simulate import simulate

    policy = PlannerPolicy(run_dir, cost="latent", noise=0.0)
    summaries = simulate("maze-easy", policy, 2, seed=7, out=tmp_path / "mpc.hdf5", env_kwargs={"max_steps": 4},
                         progress=False)
    assert [s.frames for s in summaries if not s.success] == [5] * sum(not s.success for s in summaries)
    episodes = load_dataset(tmp_path / "mpc.hdf5").episodes
    assert len(episodes) == 2 and all(np.abs(e["action"]).max() <= 1 for e in episodes)
    # noise-free, the first action is the controller's own first action toward the episode's goal image
    from hvp.agent import reset_controller

    controller, _ = build_controller(run_dir, "cem", "latent", threads=1)
    first = episodes[0]
    rng = np.random.default_rng(7)
    state = reset_controller(controller, first["goal_image"], int(rng.integers(2**31)))
    _, action = controller.act(state, {"image": first["image"][0], "state": first["state"][0]})
    np.testing.assert_allclose(first["action"][0], action, atol=1e-6)
    # a worker process gets the recipe, not the built controller
    assert pickle.loads(pickle.dumps(policy)).controller is None and policy.controller is not None
    with pytest.raises(ValueError, match="noise"):
        PlannerPolicy(run_dir, noise=-1)
