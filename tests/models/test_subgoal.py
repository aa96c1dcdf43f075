"""Subgoal CVAE on real MuJoCo maze episodes seen through a small trained RSSM: shapes, tree order,
save/load, named errors, and that trained midpoints beat random frames on held-out episodes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hvp.contracts import SubgoalGenerator
from hvp.models.checkpoint import CheckpointError
from hvp.models.subgoal import (SubgoalConfig, SubgoalCVAE, SubgoalTrainConfig, TorchSubgoalGenerator, fit_subgoals,
                                load_subgoals, midpoint_error, sample_triples, save_subgoals)
from hvp.subgoal_tree import tree_order


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    """(train, held-out) EpisodeLatents of 16 maze-easy episodes (12 / 4) under a debug RSSM."""
    from hvp.data import TrajectoryDataset
    from hvp.models.fit import fit
    from hvp.models.fit_distance import episode_latents
    from hvp.models.runtime import TorchRuntime
    from hvp.simulate import simulate

    episodes = simulate("maze-easy", "explore", 16, env_kwargs={"max_steps": 40}, progress=False)
    model = fit(TrajectoryDataset(episodes, {"env_name": "maze-easy"}), tmp_path_factory.mktemp("rssm"),
                preset="debug", train_overrides={"steps": 10}, model_overrides={"stoch_dim": 16}, threads=1,
                progress=False)
    runtime = TorchRuntime(model, threads=1)
    return episode_latents(runtime, episodes[:12], 1), episode_latents(runtime, episodes[12:], 1)


@pytest.fixture(scope="module")
def trained(latents):
    config = SubgoalConfig.preset("debug", latent_dim=latents[0].encoded.shape[1])
    train = SubgoalTrainConfig.preset("debug", max_offset=15)
    return TorchSubgoalGenerator(fit_subgoals(latents[0], config, train, progress=False))


def test_tree_order_is_parents_first_midpoints():
    assert tree_order(1) == [(0, -1, 1)]
    assert tree_order(3) == [(1, -1, 3), (0, -1, 1), (2, 1, 3)]
    assert [slot for slot, _, _ in tree_order(7)] == [3, 1, 5, 0, 2, 4, 6]
    with pytest.raises(ValueError, match="subgoals: expected K = 2\\*\\*L - 1"):
        tree_order(4)


def test_triples_are_equally_spaced_frames_of_one_episode(latents):
    train, _ = latents
    start, middle, goal = sample_triples(train, np.random.default_rng(0), 64, 2, 10, filtered_fraction=0.0)
    rows = {tuple(row): index for index, row in enumerate(train.encoded)}
    for s, m, g in zip(start, middle, goal):
        i, j, k = rows[tuple(s)], rows[tuple(m)], rows[tuple(g)]
        assert j - i == k - j and 2 <= j - i <= 10 and train.episode[i] == train.episode[k]


@pytest.mark.parametrize("count", [1, 3, 7])
def test_propose_shapes_and_recursive_midpoints(trained, latents, count):
    assert isinstance(trained, SubgoalGenerator)
    start, goal = latents[0].encoded[0], latents[0].encoded[30]
    codes = np.random.default_rng(0).standard_normal((5, count, trained.code_dim)).astype(np.float32)
    chain = trained.propose(start, goal, codes)
    assert chain.shape == (5, count, trained.latent_dim) and chain.dtype == np.float32
    # the middle slot is the midpoint of start and goal under its own code, whatever K is
    middle = trained.propose(start, goal, codes[:, count // 2:count // 2 + 1])[:, 0]
    np.testing.assert_allclose(chain[:, count // 2], middle, atol=1e-5)


def test_trained_midpoints_beat_random_frames_on_held_out_episodes(trained, latents):
    scores = midpoint_error(trained, latents[1], triples=256, seed=1)
    assert scores["best_of_codes"] < 0.8 * scores["random_frame"], scores


def test_save_load_round_trip_and_refusals(tmp_path, trained, latents):
    save_subgoals(tmp_path / "subgoals", trained.net, extra={"note": "test"})
    loaded = load_subgoals(tmp_path / "subgoals")
    start, goal = latents[0].encoded[0], latents[0].encoded[20]
    codes = np.random.default_rng(1).standard_normal((4, 3, trained.code_dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.propose(start, goal, codes), trained.propose(start, goal, codes))
    with pytest.raises(CheckpointError, match="has no config.json; train one with `hvp train-subgoals"):
        load_subgoals(tmp_path / "missing")
    other = SubgoalCVAE(SubgoalConfig.preset("debug", latent_dim=trained.latent_dim, hidden_dim=8))
    torch.manual_seed(0)
    save_subgoals(tmp_path / "other", other)
    (tmp_path / "other" / "config.json").write_text((tmp_path / "subgoals" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="saved for another model"):
        load_subgoals(tmp_path / "other")


def test_propose_errors_name_the_argument(trained):
    dim, code = trained.latent_dim, trained.code_dim
    good = np.zeros(dim, np.float32)
    with pytest.raises(ValueError, match=f"start: expected shape \\({dim},\\)"):
        trained.propose(np.zeros(dim + 1, np.float32), good, np.zeros((1, 1, code), np.float32))
    with pytest.raises(TypeError, match="goal: expected dtype float32, got float64"):
        trained.propose(good, np.zeros(dim), np.zeros((1, 1, code), np.float32))
    with pytest.raises(ValueError, match="codes: expected shape"):
        trained.propose(good, good, np.zeros((1, 1, code + 1), np.float32))
    with pytest.raises(ValueError, match="subgoals: expected K = 2"):
        trained.propose(good, good, np.zeros((1, 2, code), np.float32))
