"""State dynamics on real MuJoCo maze episodes: what it learns, its samples, its checkpoint, its errors."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.data import TrajectoryDataset
from hvp.models.checkpoint import CheckpointError
from hvp.models.state_dynamics import StateDynamicsConfig, StateDynamicsNet, TorchStateDynamics, load_state_dynamics, \
    recent_actions, train_state_dynamics, transitions


@pytest.fixture(scope="module")
def trained(maze_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("state_dynamics")
    dynamics, record = train_state_dynamics(maze_dataset, out, preset="debug", train_overrides={"steps": 1500},
                                            held_out=0.25, progress=False)
    return dynamics, record, out


def test_it_predicts_the_ball_better_than_holding_it_still(trained):
    dynamics, record, _ = trained
    assert record["task"] == "maze-easy" and dynamics.task == "maze-easy"
    train = record["mean_abs_error"]["train"]
    # the ball moves under every exploration action: five steps open-loop, well under the error of no motion
    assert np.all(np.array(train["step_5"]) < 0.5 * np.array(train["held_state_step_5"]))
    assert set(record["mean_abs_error"]) == {"train", "held_out"}


def test_rollout_shapes_and_round_trip_are_exact(trained, maze_dataset):
    dynamics, _, out = trained
    episode = maze_dataset.episodes[0]
    states = episode["true_state"][:3].astype(np.float32)
    recent = np.zeros((3, dynamics.history, dynamics.action_dim), np.float32)
    actions = np.tile(episode["action"][None, :6], (3, 1, 1)).astype(np.float32)
    path = dynamics.rollout(states, recent, actions)
    assert path.shape == (3, 6, dynamics.state_dim) and path.dtype == np.float32
    loaded = load_state_dynamics(out)
    np.testing.assert_array_equal(loaded.rollout(states, recent, actions), path)
    # each step conditions on what came before it: the first step of a rollout is the one-step prediction
    np.testing.assert_array_equal(dynamics.rollout(states, recent, actions[:, :1])[:, 0], path[:, 0])


def test_recent_actions_are_newest_first_and_zero_before_the_episode():
    actions = np.arange(8, dtype=np.float32).reshape(4, 2)
    recent = recent_actions(actions, 2)
    assert recent.shape == (4, 2, 2)
    np.testing.assert_array_equal(recent[0], np.zeros((2, 2)))
    np.testing.assert_array_equal(recent[1], [actions[0], [0, 0]])
    np.testing.assert_array_equal(recent[3], [actions[2], actions[1]])


def test_transitions_pair_each_frame_with_the_next(maze_dataset):
    samples = transitions(maze_dataset.episodes[:2], history=2)
    first = maze_dataset.episodes[0]
    frames = len(first["true_state"])
    assert len(samples.states) == sum(len(e["true_state"]) - 1 for e in maze_dataset.episodes[:2])
    np.testing.assert_array_equal(samples.next_states[:frames - 1], first["true_state"][1:])
    np.testing.assert_array_equal(samples.actions[:frames - 1], first["action"][:-1])
    np.testing.assert_array_equal(samples.recent[frames - 1], np.zeros((2, first["action"].shape[1])))


def test_errors_name_what_is_wrong(trained, tmp_path, maze_dataset):
    dynamics = trained[0]
    with pytest.raises(CheckpointError, match="hvp train-state-dynamics"):
        load_state_dynamics(tmp_path / "missing")
    stateless = TrajectoryDataset([{k: v for k, v in e.items() if k != "true_state"} for e in maze_dataset.episodes],
                                  maze_dataset.env_args)
    with pytest.raises(ValueError, match="has no 'true_state'"):
        train_state_dynamics(stateless, tmp_path / "d", preset="debug", progress=False)
    states = np.zeros((2, dynamics.state_dim), np.float32)
    recent = np.zeros((2, dynamics.history, dynamics.action_dim), np.float32)
    actions = np.zeros((2, 4, dynamics.action_dim), np.float32)
    with pytest.raises(ValueError, match="states"):
        dynamics.rollout(np.zeros((2, dynamics.state_dim + 1), np.float32), recent, actions)
    with pytest.raises(ValueError, match="recent_actions"):
        dynamics.rollout(states, recent[:, :1], actions)
    with pytest.raises(ValueError, match="actions"):
        dynamics.rollout(states, recent, actions[:1])
    with pytest.raises(TypeError, match="actions: expected dtype float32"):
        dynamics.rollout(states, recent, actions.astype(np.float64))
    with pytest.raises(ValueError, match="history must be >= 0"):
        StateDynamicsConfig(history=-1)
    with pytest.raises(TypeError, match="StateDynamicsNet"):
        TorchStateDynamics(object())
    assert isinstance(StateDynamicsNet(StateDynamicsConfig(history=0)), StateDynamicsNet)
