"""Reachability refinement in miniature: a 1-D corridor with a wall the controller cannot cross.

Exploration walks through the wall's gap freely (its offsets say 'near'), but the controller, aimed across
x = 0, never arrives. Refined on such outcomes, the distance must learn that crossings are out of reach
while keeping same-side predictions close to the steps the controller took."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hvp.models.fit_distance import DistanceTrainConfig, EpisodeLatents, fit_distance
from hvp.models.reachability import Outcomes, ReachabilityConfig, refine_reachability, score_reachability
from hvp.models.temporal_distance import TemporalDistanceConfig, TemporalDistanceNet, TorchDistance

DIM, SPEED, BUDGET = 6, 0.05, 15


def corridor_latents(rng: np.random.Generator, positions: np.ndarray) -> np.ndarray:
    """Positions [M] -> latents float32 [M, D]: the position, then fixed random features of it."""
    features = np.sin(np.outer(positions, np.arange(1, DIM)) * 1.7)
    return np.concatenate([positions[:, None], features], 1).astype(np.float32)


@pytest.fixture(scope="module")
def exploration() -> EpisodeLatents:
    rng = np.random.default_rng(0)
    walks = np.clip(np.cumsum(rng.choice([-SPEED, SPEED], size=(40, 30)), 1) + rng.uniform(-1, 1, (40, 1)), -1, 1)
    flat = corridor_latents(rng, walks.ravel())
    lengths = np.full(40, 30)
    return EpisodeLatents(flat, flat, np.repeat(flat[:, None], 2, 1), np.repeat(np.arange(40), 30),
                          np.arange(0, 1200, 30), lengths)


def outcomes_of(rng: np.random.Generator, count: int) -> Outcomes:
    start, target = rng.uniform(-0.6, 0.6, (2, count))
    steps = np.abs(target - start) / SPEED
    reached = (np.sign(start) == np.sign(target)) & (steps <= BUDGET)
    return Outcomes(corridor_latents(rng, start), corridor_latents(rng, target),
                    np.where(reached, steps, BUDGET).astype(np.float32), reached, BUDGET)


def test_refinement_learns_what_the_controller_cannot_reach(exploration):
    model = TemporalDistanceConfig.preset("debug", latent_dim=DIM, max_steps=40)
    metric = DistanceTrainConfig.preset("debug", imagined_fraction=0.0, local_steps=2, upper_steps=15)
    net = fit_distance(exploration, model, metric, progress=False)
    rng = np.random.default_rng(1)
    train, held_out = outcomes_of(rng, 400), outcomes_of(rng, 200)
    given = TorchDistance(net).steps(held_out.start, held_out.target)
    before = score_reachability(TorchDistance(net), held_out)
    refined = refine_reachability(net, train, exploration, ReachabilityConfig(steps=400, seed=0), metric,
                                  progress=False)
    after = score_reachability(TorchDistance(refined), held_out)
    assert after["reach_accuracy"] > before["reach_accuracy"] + 0.1
    assert after["reach_accuracy"] > 0.8
    assert after["predicted_median_unreached"] > BUDGET > after["predicted_median_reached"]
    # the given network is left as it was: refinement works on a copy
    np.testing.assert_array_equal(TorchDistance(net).steps(held_out.start, held_out.target), given)


def test_outcomes_and_config_reject_bad_input():
    latents = np.zeros((3, DIM), np.float32)
    with pytest.raises(ValueError, match="Outcomes: expected"):
        Outcomes(latents, latents[:2], np.zeros(3, np.float32), np.zeros(3, bool), BUDGET)
    with pytest.raises(ValueError, match="at least one outcome"):
        Outcomes(latents[:0], latents[:0], np.zeros(0, np.float32), np.zeros(0, bool), BUDGET)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ReachabilityConfig(steps=0)


@pytest.mark.parametrize("targets", [1, 5])
def test_a_distance_with_a_detour_exports_to_onnx_exactly(tmp_path, targets):
    from hvp.models.export import ExportModel, distance_graphs, export_models
    from hvp.models.temporal_distance import KIND
    from hvp.real.onnx_distance import OnnxDistance

    net = TemporalDistanceNet(TemporalDistanceConfig.preset("debug", latent_dim=DIM, detour_hidden=8)).eval()
    with torch.no_grad():
        net.detour_net[-1].bias.fill_(0.5)  # a detour of a few steps, so the comparison covers it
    export_models([ExportModel(KIND, net.config.to_dict(), distance_graphs(net))], tmp_path)
    rng = np.random.default_rng(targets)
    a, b = rng.normal(size=(5, DIM)).astype(np.float32), rng.normal(size=(targets, DIM)).astype(np.float32)
    expected = TorchDistance(net).steps(a, b)
    with torch.no_grad():  # the metric part alone: the detour adds steps on top of it
        metric = net.uncapped_steps(torch.from_numpy(a), torch.from_numpy(b)).clamp(max=net.config.max_steps).numpy()
    assert np.all(expected >= metric - 1e-5) and np.any(expected > metric + 0.5)
    np.testing.assert_allclose(OnnxDistance(tmp_path, threads=1).steps(a, b), expected, atol=1e-4, rtol=1e-5)


def test_reach_auc_ranks_unreached_attempts_above_reached_ones():
    class Fixed:  # a Distance that predicts the given steps, whatever the latents
        def __init__(self, steps):
            self.values = np.asarray(steps, np.float32)

        def steps(self, latents_a, latents_b):
            return self.values

    latents = np.zeros((4, DIM), np.float32)
    outcomes = Outcomes(latents, latents, np.array([2, 3, 15, 15], np.float32), np.array([1, 1, 0, 0], bool), BUDGET)
    assert score_reachability(Fixed([1, 2, 8, 9]), outcomes)["reach_auc"] == 1.0
    assert score_reachability(Fixed([8, 9, 1, 2]), outcomes)["reach_auc"] == 0.0
    assert score_reachability(Fixed([5, 5, 5, 5]), outcomes)["reach_auc"] == 0.5
