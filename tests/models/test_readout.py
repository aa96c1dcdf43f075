"""State readout on real MuJoCo maze episodes seen through a small trained RSSM."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.data import TrajectoryDataset
from hvp.models.checkpoint import CheckpointError
from hvp.models.fit_distance import EpisodeLatents
from hvp.models.readout import READOUT_DIR, episode_true_states, load_readout, readout_samples, train_readout


@pytest.fixture(scope="module")
def trained(rssm_run, maze_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("readout")
    readout, record = train_readout(rssm_run, maze_dataset, out, preset="debug", train_overrides={"steps": 1500},
                                   held_out=0.25, progress=False)
    return readout, record, out


def test_readout_learns_the_ball_position(trained, maze_dataset):
    readout, record, _ = trained
    assert record["task"] == "maze-easy" and readout.task == "maze-easy"
    states = episode_true_states(maze_dataset.episodes)
    mean_predictor = np.abs(states - states.mean(0)).mean(0)
    # the fitted episodes: well under what predicting the average position would miss by
    assert np.all(np.array(record["mean_abs_error"]["train"]["filtered"]) < 0.5 * mean_predictor)
    assert set(record["mean_abs_error"]) == {"train", "held_out"}
    assert set(record["mean_abs_error"]["held_out"]) == {"filtered", "encoded", "imagined_5"}


def test_save_load_round_trip_is_exact(trained, rssm_run, maze_dataset):
    from hvp.models.runtime import load_runtime

    readout, _, out = trained
    latents = load_runtime(rssm_run).encode(maze_dataset.episodes[0]["image"][:6])
    loaded = load_readout(out)
    np.testing.assert_array_equal(loaded.states(latents), readout.states(latents))
    assert loaded.states(latents).shape == (6, 2) and loaded.task == "maze-easy"


def test_samples_pair_imagined_latents_with_the_frames_they_predict():
    # 2 episodes of 3 and 2 frames; every latent holds the flat frame index it stands for
    frames = np.arange(5, dtype=np.float32)[:, None]
    imagined = np.stack([frames + 1, frames + 2], axis=1)  # imagined[t, j] stands for frame t + j + 1
    latents = EpisodeLatents(frames, frames, imagined, np.array([0, 0, 0, 1, 1]), np.array([0, 3]), np.array([3, 2]))
    samples = readout_samples(latents, 10 * frames)
    np.testing.assert_array_equal(samples.states, 10 * samples.latents)
    # imagined rows only within the episode: 1 ahead from frames 0, 1, 3; 2 ahead from frame 0
    assert np.bincount(samples.kinds).tolist() == [5, 5, 3, 1]
    with pytest.raises(ValueError, match="true_states: expected 5 rows"):
        readout_samples(latents, frames[:4])


def test_errors_name_what_is_missing(tmp_path, maze_dataset, rssm_run):
    with pytest.raises(CheckpointError, match="hvp train-readout"):
        load_readout(tmp_path / READOUT_DIR)
    stateless = TrajectoryDataset([{k: v for k, v in e.items() if k != "true_state"} for e in maze_dataset.episodes],
                                  maze_dataset.env_args)
    with pytest.raises(ValueError, match="has no 'true_state'"):
        train_readout(rssm_run, stateless, tmp_path / "r", preset="debug", progress=False)


def test_states_refuses_wrong_shapes(trained):
    readout = trained[0]
    with pytest.raises(ValueError, match="latents"):
        readout.states(np.zeros((3, readout.latent_dim + 1), np.float32))
    with pytest.raises(ValueError, match="latents"):
        readout.states(np.zeros(readout.latent_dim, np.float32))
