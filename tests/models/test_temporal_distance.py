"""Temporal-distance model on real MuJoCo maze episodes seen through a small trained RSSM."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gradient_check import directional_check

from hvp.models.checkpoint import CheckpointError
from hvp.models.fit_distance import (DistanceTrainConfig, episode_latents, evaluate_distance, fit_distance,
                                     random_pairs, sample_pairs, spearman)
from hvp.models.temporal_distance import (TemporalDistanceConfig, TemporalDistanceNet, TorchDistance, load_distance,
                                          save_distance)


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    """(train, held-out) EpisodeLatents of 16 maze-easy episodes (12 / 4) under a debug RSSM."""
    from hvp.data import TrajectoryDataset
    from hvp.models.fit import fit
    from hvp.models.runtime import TorchRuntime
    from hvp.simulate import simulate

    episodes = simulate("maze-easy", "explore", 16, env_kwargs={"max_steps": 40}, progress=False)
    dataset = TrajectoryDataset(episodes, {"env_name": "maze-easy"})
    # stoch 16: encode() keeps only the stochastic part of a single image, and 4 dims carry too little of it
    model = fit(dataset, tmp_path_factory.mktemp("rssm"), preset="debug", train_overrides={"steps": 10},
                model_overrides={"stoch_dim": 16}, threads=2, progress=False)
    runtime = TorchRuntime(model, threads=2)
    return episode_latents(runtime, episodes[:12], 5), episode_latents(runtime, episodes[12:], 5)


@pytest.fixture(scope="module")
def trained(latents):
    config = TemporalDistanceConfig.preset("debug", latent_dim=latents[0].filtered.shape[1])
    return TorchDistance(fit_distance(latents[0], config, DistanceTrainConfig.preset("debug"), progress=False))


def test_latents_line_up_with_frames(latents):
    train, _ = latents
    assert train.filtered.shape == train.encoded.shape == (train.frames, train.filtered.shape[1])
    assert train.imagined.shape == (train.frames, 5, train.filtered.shape[1])
    assert train.lengths.sum() == train.frames and train.starts[0] == 0
    assert np.all(np.isfinite(train.imagined))


def test_pairs_are_labelled_by_offsets(latents):
    train, _ = latents
    a, b, offsets = sample_pairs(train, np.random.default_rng(0), 512, 10, imagined_fraction=0.0)
    assert a.shape == b.shape == (512, train.filtered.shape[1]) and offsets.shape == (512,)
    assert offsets.min() == 0 and offsets.max() == 10
    rows = np.array([np.flatnonzero((train.filtered == row).all(1))[0] for row in a])
    # the target is the start's frame k later, in the same episode, encoded alone
    np.testing.assert_array_equal(train.encoded[rows + offsets.astype(int)], b)
    assert np.all(train.episode[rows] == train.episode[rows + offsets.astype(int)])


def test_imagined_starts_come_from_earlier_beliefs_of_the_same_episode(latents):
    train, _ = latents
    a, _ = random_pairs(train, np.random.default_rng(0), 256, imagined_fraction=0.99)
    filtered = (a[:, None] == train.filtered[None]).all(-1).any(1)
    imagined = (a[:, None, None] == train.imagined[None]).all(-1).any((1, 2))
    # an episode's first frame has no earlier belief: it stays filtered
    assert np.all(filtered | imagined) and imagined.mean() > 0.8


def test_learns_a_metric_on_held_out_episodes(latents, trained):
    train, held_out = latents
    score = evaluate_distance(trained, held_out, pairs=2048, seed=1)
    # chance is 0; a constant prediction has no rank correlation at all
    assert score["spearman"] > 0.35, score  # 0.49 measured with this 10-step debug world model
    assert evaluate_distance(trained, train, seed=1)["spearman"] < score["spearman"] + 0.15
    a, b, _ = sample_pairs(held_out, np.random.default_rng(2), 256, 10, 0.5)
    steps = trained.steps(a, b)
    assert steps.dtype == np.float32 and steps.shape == (256,)
    assert np.all((steps >= 0) & (steps <= trained.max_steps + 1e-4))
    # a metric: symmetric, zero on itself, triangle inequality (up to float error)
    c = held_out.encoded[np.random.default_rng(3).integers(held_out.frames, size=256)]
    np.testing.assert_allclose(trained.steps(a, b), trained.steps(b, a), atol=1e-4)
    assert np.all(trained.steps(a, a) < 1e-3)
    uncapped = lambda x, y: trained.net.uncapped_steps(torch.from_numpy(x), torch.from_numpy(y)).detach().numpy()
    assert np.all(uncapped(a, c) <= uncapped(a, b) + uncapped(b, c) + 1e-3)


def test_far_pairs_saturate_at_k_max():
    net = TemporalDistanceNet(TemporalDistanceConfig(latent_dim=4, hidden_dim=8, max_steps=5))
    with torch.no_grad():
        net.embedding[-1].weight.mul_(1e3)  # LayerNorm bounds the hidden layers: spread the embedding instead
    a, b = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    assert np.all(net.uncapped_steps(torch.from_numpy(a), torch.from_numpy(b)).detach().numpy() > 5)
    np.testing.assert_allclose(TorchDistance(net).steps(a, b), 5.0, rtol=1e-5)


def test_save_load_round_trip(tmp_path, trained, latents):
    a = latents[1].filtered[:7]
    save_distance(tmp_path, trained.net, extra={"note": "round trip"})
    loaded = load_distance(tmp_path)
    np.testing.assert_array_equal(loaded.steps(a, a[:1]), trained.steps(a, a[:1]))
    assert loaded.max_steps == trained.max_steps


def test_load_refuses_missing_and_mismatched(tmp_path):
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_distance(tmp_path / "nothing")
    save_distance(tmp_path / "a", TemporalDistanceNet(TemporalDistanceConfig(latent_dim=8, hidden_dim=4)))
    save_distance(tmp_path / "b", TemporalDistanceNet(TemporalDistanceConfig(latent_dim=8, hidden_dim=6)))
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="another model"):
        load_distance(tmp_path / "a")


def test_steps_errors_name_the_argument():
    distance = TorchDistance(TemporalDistanceNet(TemporalDistanceConfig(latent_dim=8, hidden_dim=4)))
    a = np.zeros((5, 8), np.float32)
    assert distance.steps(a, a[:1]).shape == (5,)
    with pytest.raises(ValueError, match=r"latents_b: expected 1 or 5 rows"):
        distance.steps(a, a[:3])
    with pytest.raises(ValueError, match=r"latents_a: expected shape \('\*', 8\), got \(5, 7\)"):
        distance.steps(a[:, :7], a)
    with pytest.raises(TypeError, match="latents_b: expected dtype float32, got float64"):
        distance.steps(a, a.astype(np.float64))


def test_config_and_spearman_checks():
    with pytest.raises(ValueError, match="max_steps must be >= 2"):
        TemporalDistanceConfig(max_steps=1)
    with pytest.raises(ValueError, match="upper_steps must be >= local_steps"):
        DistanceTrainConfig(local_steps=8, upper_steps=4)
    with pytest.raises(ValueError, match="repulsion_weight must be >= 0"):
        DistanceTrainConfig(repulsion_weight=-1.0)
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)


def test_steps_vjp_is_the_gradient_of_steps(trained):
    distance, rng = trained, np.random.default_rng(5)
    starts, goal = rng.normal(size=(6, distance.latent_dim)).astype(np.float32), rng.normal(size=(1, distance.latent_dim))
    steps, vjp = distance.steps_vjp(starts, goal.astype(np.float32))
    np.testing.assert_allclose(steps, distance.steps(starts, goal.astype(np.float32)), rtol=1e-5)
    directional_check(lambda a: distance.steps(a, goal.astype(np.float32)), vjp, starts,
                      rng.uniform(0.5, 1.5, 6).astype(np.float32))
