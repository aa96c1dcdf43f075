"""Controller outcomes on a real MuJoCo maze (replay, grading, HDF5 files) and the hvp refine-reachability verb."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from playground_fixtures import debug_run, maze_episodes  # noqa: F401 (fixtures)

from hvp.reachability import OutcomeError, attempt, collect_outcomes, load_outcomes, replay_to, save_outcomes
from hvp.sim import make


class Replay:
    """A controller that plays given actions, blind to images: what the exploration did, done again."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions

    def reset(self, goal_image):
        return {"step": 0}

    def act(self, state, obs):
        action = self.actions[min(state["step"], len(self.actions) - 1)]
        return {"step": state["step"] + 1}, action if state["step"] < len(self.actions) else np.zeros(2, np.float32)


@pytest.fixture
def env():
    env = make("maze-easy", max_steps=60)
    yield env
    env.close()


def test_replay_reproduces_the_recorded_frames_and_refuses_foreign_data(env, maze_episodes):
    episode = maze_episodes[0]
    last = len(episode["image"]) - 1
    obs = replay_to(env, episode, last)
    np.testing.assert_array_equal(obs["image"], episode["image"][last])
    tampered = {**episode, "true_state": episode["true_state"] + 0.5}
    with pytest.raises(OutcomeError, match="was it collected with this env"):
        replay_to(env, tampered, 3)


def test_an_attempt_is_graded_on_the_true_state(env, maze_episodes):
    episode = max(maze_episodes, key=lambda e: len(e["image"]))
    start, offset = 1, len(episode["image"]) - 2
    target_image, target = episode["image"][start + offset], episode["true_state"][start + offset][:2]
    moved = np.linalg.norm(target - episode["true_state"][start][:2])
    # the exploration's own actions get there, and no later than it did
    steps, reached, error = attempt(env, Replay(episode["action"][start:start + offset]), target_image, target,
                                    replay_to(env, episode, start), budget=offset + 4, radius=0.05, seed=0)
    assert reached and steps <= offset and error < 0.05
    # standing still does not, unless the target is where it started
    steps, reached, error = attempt(env, Replay(np.zeros((1, 2), np.float32)), target_image, target,
                                    replay_to(env, episode, start), budget=5, radius=0.05, seed=0)
    assert reached == (moved < 0.05) and (reached or (steps == 5 and error > 0.05))


def test_collected_outcomes_round_trip_through_hdf5(env, maze_episodes, tmp_path):
    from hvp.agent import RandomActions
    from hvp.data import TrajectoryDataset

    dataset = TrajectoryDataset(maze_episodes, {"env_name": "maze-easy"})
    outcomes = collect_outcomes(env, RandomActions(2), dataset, attempts=5, budget=4, max_offset=6, radius=0.15,
                                progress=False)
    assert outcomes["start_image"].shape == (5, 64, 64, 3) and outcomes["target_image"].dtype == np.uint8
    assert np.all((outcomes["steps"] >= 1) & (outcomes["steps"] <= 4)) and np.all(outcomes["offset"] <= 6)
    assert np.all(outcomes["steps"][~outcomes["reached"]] == 4)
    for row in range(5):  # each target is the dataset frame `offset` steps after the start frame
        episode = maze_episodes[outcomes["episode"][row]]
        frame = outcomes["start_frame"][row] + outcomes["offset"][row]
        np.testing.assert_array_equal(outcomes["target_image"][row], episode["image"][frame])
    path = save_outcomes(tmp_path / "outcomes.hdf5", outcomes, {"budget": 4})
    loaded, attrs = load_outcomes(path)
    assert attrs["budget"] == 4 and all(np.array_equal(loaded[k], outcomes[k]) for k in outcomes)
    with h5py.File(tmp_path / "other.hdf5", "w") as file:
        file.create_dataset("steps", data=np.zeros(3))
    with pytest.raises(OutcomeError, match="not an outcomes file"):
        load_outcomes(tmp_path / "other.hdf5")
    (tmp_path / "broken.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(OutcomeError, match="cannot read it as HDF5"):
        load_outcomes(tmp_path / "broken.hdf5")


@pytest.mark.slow  # a debug distance, 6 controller attempts and a short refinement: ~30 s
def test_refine_reachability_verb_records_outcomes_and_scores_before_and_after(debug_run, maze_episodes, tmp_path,
                                                                                capsys):
    from hvp.cli import main
    from hvp.data import save_trajectories
    from hvp.models.temporal_distance import load_distance

    data = tmp_path / "data.hdf5"
    save_trajectories(maze_episodes, data, {"env_name": "maze-easy", "env_kwargs": {}})
    assert main(["train-distance", debug_run, "--data", str(data), "--preset", "debug", "--steps", "20",
                 "--no-progress"]) == 0
    out = tmp_path / "reach"
    arguments = ["refine-reachability", debug_run, "--data", str(data), "--out", str(out), "--attempts", "6",
                 "--budget", "4", "--max-offset", "5", "--preset", "debug", "--no-progress"]
    assert main(arguments) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["attempts"] == 6 and set(report["before"]) == set(report["after"]) == {"train", "held_out"}
    assert load_distance(out).net.detour_net is not None
    assert main(arguments) == 0  # again: the recorded outcomes are reused, not collected anew
    assert "reusing 6 attempts" in capsys.readouterr().out
    # the high level of a hierarchical controller plans with it
    assert main(["plan", "--env", "maze-easy", "--model", debug_run, "--hierarchical", "--subgoals", "none",
                 "--reachability", str(out), "--cost", "latent", "--preset", "debug", "--episodes", "1",
                 "--max-steps", "2", "--videos", "0", "--out", str(tmp_path / "plan"), "--no-progress"]) == 0


class SteerPusher:
    """Drives the pusher to a point by reading the simulator (a test stand-in for a controller that got there)."""

    def __init__(self, env, point: np.ndarray) -> None:
        self.env, self.point = env, point

    def reset(self, goal_image):
        return {}

    def act(self, state, obs):
        pusher = self.env.unwrapped.data.qpos[:2]
        return state, np.clip(4.0 * (self.point - pusher), -1, 1).astype(np.float32)


def test_pushing_attempts_are_graded_on_the_block_too_when_asked():
    env = make("push", max_steps=60)
    try:
        obs, info = env.reset(seed=0)
        pusher, block = info["true_state"][:2], info["true_state"][2:4]
        away = pusher + 0.2 * (pusher - block) / np.linalg.norm(pusher - block)  # off the block's side
        target = np.concatenate([away, block + 0.3])  # pusher there, but the block somewhere else
        steps, reached, error = attempt(env, SteerPusher(env, away), obs["image"], target[:2], obs, 30, 0.05, 0)
        assert reached and error < 0.05
        obs, _ = env.reset(seed=0)
        steps, reached, error = attempt(env, SteerPusher(env, away), obs["image"], target, obs, 30, 0.05, 0)
        assert not reached and steps == 30 and error > 0.25  # the pusher arrived; the unmoved block did not
    finally:
        env.close()
    with pytest.raises(ValueError, match="graded_dims"):
        collect_outcomes(env, SteerPusher(env, away), None, 1, 1, 1, 0.1, graded_dims=0)
