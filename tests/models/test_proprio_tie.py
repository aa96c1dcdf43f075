"""The proprio tie (RSSMConfig.proprio_weight): the robot's own recorded state read from filtered and open-loop
latents, a training loss only."""
import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.fit import fit
from hvp.models.runtime import load_runtime
from open_loop_check import direct_open_loop


def proprio_model(maze_dataset, weight: float = 10.0):
    torch.manual_seed(0)
    states = np.concatenate([e["state"] for e in maze_dataset.episodes])
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", proprio_weight=weight,
                                                             proprio_dim=states.shape[1]))
    model.set_proprio_scale(torch.from_numpy(states))
    return model


def window_tensors(maze_dataset, seed: int, length: int):
    windows = maze_dataset.sample_windows(np.random.default_rng(seed), 2, length)
    return tuple(torch.from_numpy(windows[key]) for key in ("image", "action", "state"))


def test_the_scale_standardizes_the_recorded_states(maze_dataset):
    model = proprio_model(maze_dataset)
    states = torch.from_numpy(np.concatenate([e["state"] for e in maze_dataset.episodes]))
    standardized = (states - model.proprio_mean) / model.proprio_std
    torch.testing.assert_close(standardized.mean(0), torch.zeros(states.shape[1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardized.std(0), torch.ones(states.shape[1]), atol=1e-5, rtol=0)


def test_the_ties_read_the_planning_latents_filtered_and_rolled_out(maze_dataset):
    """Filtered: the head on [h, posterior mean] against the standardized state of the same frame. Open loop: against
    a direct loop of RSSM.rollout (the planner's) for d steps from every OPEN_LOOP_START_STRIDE-th filtered state t,
    the head on its last latent against the state of frame t + d."""
    model = proprio_model(maze_dataset)
    images, actions, states = window_tensors(maze_dataset, 1, 12)
    standardized = (states - model.proprio_mean) / model.proprio_std
    with torch.no_grad():
        window = model.filter_window(images, actions, states)
        torch.testing.assert_close(window.proprio, standardized)
        filtered = model.proprio_head(torch.cat([window.deters, window.post_mean], -1))
        torch.testing.assert_close(model.proprio_tie(torch.cat([window.deters, window.post_mean], -1), window.proprio),
                                   ((filtered - standardized) ** 2).sum(-1).mean())
        torch.manual_seed(7)
        got = float(model.open_loop_terms(window, torch.ones(2, 12, 1, 64, 64))["open_loop_proprio_tie"])
        steps, rolled = direct_open_loop(model, window, 7)
        errors = [((model.proprio_head(latent) - standardized[:, t + steps]) ** 2).sum(-1) for t, latent in rolled]
    np.testing.assert_allclose(got, float(torch.cat(errors).mean()), rtol=1e-4)
    assert got > 0.01  # an untrained head reads nothing


def test_the_loss_adds_both_ties_at_the_weight_and_trains_the_transition(maze_dataset):
    model = proprio_model(maze_dataset, weight=10.0)
    images, actions, states = window_tensors(maze_dataset, 0, 8)
    window = model.filter_window(images, actions, states)
    torch.manual_seed(3)  # the same open-loop horizon in both
    loss, metrics = model.elbo(window)
    ties = float(metrics["proprio_tie"] + metrics["open_loop_proprio_tie"])
    assert ties > 0
    model.config = model.config.replace(proprio_weight=0.0)
    torch.manual_seed(3)
    untied, _ = model.elbo(window)
    np.testing.assert_allclose(float((loss - untied).detach()), 10.0 * ties, rtol=1e-4)
    model.zero_grad()
    model.open_loop_terms(window, torch.ones(2, 8, 1, 64, 64))["open_loop_proprio_tie"].backward()
    assert model.cell.state_gates.weight.grad.abs().sum() > 0
    assert model.proprio_head.weight.grad.abs().sum() > 0


def test_a_model_with_the_tie_needs_the_states_and_the_config_names_what_is_wrong(maze_dataset):
    model = proprio_model(maze_dataset)
    images, actions, _ = window_tensors(maze_dataset, 0, 8)
    with pytest.raises(ValueError, match="states"):
        model(images, actions)
    with pytest.raises(ValueError, match="proprio_weight"):
        RSSMConfig.preset("debug", proprio_weight=-1.0, proprio_dim=4)
    with pytest.raises(ValueError, match="proprio_dim"):
        RSSMConfig.preset("debug", proprio_weight=1.0)
    with pytest.raises(ValueError, match="proprio_weight"):
        checkpoint.build_model("rssm", RSSMConfig.preset("debug")).set_proprio_scale(torch.zeros(4, 4))


def test_hvp_train_proprio_weight_lowers_the_tie_and_round_trips(maze_file, maze_dataset, tmp_path):
    from hvp.cli import main

    out = tmp_path / "proprio"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "100",
                 "--lr", "5e-3", "--proprio-weight", "10", "--threads", "1", "--no-progress"]) == 0
    ties = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True)["proprio_tie"]
    assert ties[-3:].mean() < 0.6 * ties[:3].mean()  # the head learns to read the robot's state (measured: 0.44x)
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["proprio_weight"] == 10.0
    assert config["model"]["proprio_dim"] == maze_dataset.episodes[0]["state"].shape[1]
    states = np.concatenate([e["state"] for e in maze_dataset.episodes])
    np.testing.assert_allclose(model.proprio_mean.numpy(), states.mean(0), rtol=1e-4, atol=1e-5)
    runtime = load_runtime(out)  # planning and prediction need images and actions only
    latents = runtime.encode(maze_dataset.episodes[0]["image"][:3])
    assert runtime.decode(latents).shape == (3, 64, 64, 3)
