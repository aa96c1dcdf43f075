"""The categorical latent (RSSMConfig.latent = "categorical", DreamerV2): one-hot samples with straight-through
gradients, class probabilities as the planning latent, its KL, its config checks and `hvp train --latent`."""
import numpy as np
import pytest
import torch

from hvp.cli import main
from hvp.config import ConfigError
from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.rssm import RSSM, UNIFORM_MIX
from hvp.models.runtime import load_runtime

GROUPS, CLASSES = 3, 4


@pytest.fixture
def model():
    torch.manual_seed(0)
    return RSSM(RSSMConfig.preset("debug", latent="categorical", classes=CLASSES, stoch_dim=GROUPS * CLASSES))


def test_samples_are_one_hot_per_group_and_pass_gradients_straight_through(model):
    params = torch.randn(6, GROUPS * CLASSES, requires_grad=True)
    sample = model.sample(params)
    groups = sample.detach().unflatten(-1, (GROUPS, CLASSES))
    assert torch.equal(groups.sum(-1), torch.ones(6, GROUPS)) and set(groups.unique().tolist()) == {0.0, 1.0}
    (sample * torch.randn(6, GROUPS * CLASSES)).sum().backward()
    assert params.grad is not None and params.grad.abs().sum() > 0  # a hard one-hot alone would give none


def test_the_mean_is_the_class_frequencies_of_the_samples(model):
    params = torch.randn(1, GROUPS * CLASSES) * 3
    mean = model.mean(params).unflatten(-1, (GROUPS, CLASSES))
    torch.testing.assert_close(mean.sum(-1), torch.ones(1, GROUPS))
    assert mean.min() >= UNIFORM_MIX / CLASSES  # the uniform share keeps every class possible
    torch.manual_seed(1)
    frequencies = model.sample(params.expand(20000, -1)).unflatten(-1, (GROUPS, CLASSES)).mean(0, keepdim=True)
    torch.testing.assert_close(frequencies, mean, atol=0.015, rtol=0)


def test_kl_is_the_sum_over_groups_of_each_groups_categorical_kl(model):
    a, b = torch.randn(5, GROUPS * CLASSES), torch.randn(5, GROUPS * CLASSES)
    p, q = (model.mean(x).unflatten(-1, (GROUPS, CLASSES)) for x in (a, b))
    expected = (p * (p.log() - q.log())).sum((-2, -1))
    torch.testing.assert_close(model.kl(a, b), expected)
    assert torch.all(model.kl(a, a).abs() < 1e-6) and torch.all(expected > 0)


@pytest.mark.parametrize("overrides, match", [
    (dict(latent="categorical", classes=5, stoch_dim=12), "classes >= 2 dividing stoch_dim"),
    (dict(latent="categorical", classes=1, stoch_dim=12), "classes >= 2 dividing stoch_dim"),
    (dict(latent="beta"), "latent must be one of"),
])
def test_bad_latent_settings_are_refused_by_name(overrides, match):
    with pytest.raises(ConfigError, match=match):
        RSSMConfig.preset("debug", **overrides)


def test_hvp_train_latent_categorical_gives_a_runtime_whose_beliefs_are_class_probabilities(maze_file, tmp_path):
    out = tmp_path / "categorical"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--latent", "categorical",
                 "--stoch-dim", "6", "--classes", "2", "--free-nats", "1", "--steps", "3", "--threads", "1",
                 "--no-progress"]) == 0
    kind, _, config = checkpoint.load_model(out)
    assert kind == "rssm" and (config["model"]["latent"], config["model"]["classes"]) == ("categorical", 2)
    assert (config["model"]["stoch_dim"], config["model"]["free_nats"]) == (6, 1)
    runtime = load_runtime(str(out), threads=1)
    rng = np.random.default_rng(0)
    state = runtime.initial_state(2)
    for _ in range(3):
        state = runtime.observe(state, rng.integers(0, 256, (2, *runtime.image_shape), dtype=np.uint8),
                                rng.uniform(-1, 1, (2, runtime.action_dim)).astype(np.float32))
    imagined = runtime.imagine(state, rng.uniform(-1, 1, (2, 5, runtime.action_dim)).astype(np.float32))
    assert imagined.shape == (2, 5, runtime.latent_dim) and imagined.dtype == np.float32
    deter_dim = config["model"]["deter_dim"]
    for stoch in (state["stoch"], imagined[..., deter_dim:]):  # filtered and imagined z: probabilities per group
        groups = stoch.reshape(*stoch.shape[:-1], -1, 2)
        np.testing.assert_allclose(groups.sum(-1), 1.0, atol=1e-5)
        assert groups.min() >= UNIFORM_MIX / 2 - 1e-7
    assert runtime.decode(imagined).shape == (2, 5, *runtime.image_shape)
