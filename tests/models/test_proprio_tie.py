"""The robot state in h (RSSMConfig.proprio_weight): h's last dims stepped linearly plus a bounded correction, tied to
the robot's own recorded state in filtered and open-loop latents, a training loss only."""
import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.rssm import OPEN_LOOP_HORIZON, OPEN_LOOP_START_STRIDE
from hvp.models.runtime import load_runtime


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


def robot(model, latents: torch.Tensor) -> torch.Tensor:
    """The robot-state dims of latents [..., D] (h's last proprio_dim)."""
    deter, size = model.config.deter_dim, model.config.proprio_dim
    return latents[..., deter - size:deter]


def test_the_scale_standardizes_the_recorded_states(maze_dataset):
    model = proprio_model(maze_dataset)
    states = torch.from_numpy(np.concatenate([e["state"] for e in maze_dataset.episodes]))
    standardized = (states - model.proprio_mean) / model.proprio_std
    torch.testing.assert_close(standardized.mean(0), torch.zeros(states.shape[1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardized.std(0), torch.ones(states.shape[1]), atol=1e-5, rtol=0)


def test_without_its_correction_the_robot_state_follows_a_linear_system_exactly(maze_dataset):
    """s' = A s + B a + c: a linear system (the free pusher's) is one the transition holds to the last digit over
    any number of steps, whatever the GRU beside it does."""
    model = proprio_model(maze_dataset)
    size, rng = model.config.proprio_dim, np.random.default_rng(0)
    a_matrix, b_matrix = rng.normal(size=(size, size)) * 0.3, rng.normal(size=(size, 2))
    bias = rng.normal(size=size)
    with torch.no_grad():
        model.robot_step.weight.copy_(torch.from_numpy(np.concatenate([a_matrix, b_matrix], 1)))
        model.robot_step.bias.copy_(torch.from_numpy(bias))
        model.robot_correction.weight.zero_()
        model.robot_correction.bias.zero_()
        deter = torch.randn(3, model.config.deter_dim, dtype=torch.float64).float()
        actions = torch.from_numpy(rng.uniform(-1, 1, (3, 12, 2))).float()
        latents = model.rollout(deter, torch.randn(3, model.config.stoch_dim), actions)
    state = deter[:, -size:].double().numpy()
    for step in range(12):
        state = state @ a_matrix.T + actions[:, step].double().numpy() @ b_matrix.T + bias
        np.testing.assert_allclose(robot(model, latents[:, step]).numpy(), state, rtol=1e-4, atol=1e-4)


def test_the_ties_read_the_robot_state_filtered_and_rolled_out(maze_dataset):
    """Filtered: h's robot dims against the standardized state of the same frame. Open loop: against a direct loop
    of RSSM.rollout (the planner's) for k = 1..d steps from every OPEN_LOOP_START_STRIDE-th filtered state t, the
    k-th latent's robot dims against the state of frame t + k, averaged over the starts, then over k."""
    model = proprio_model(maze_dataset)
    images, actions, states = window_tensors(maze_dataset, 1, 12)
    standardized = (states - model.proprio_mean) / model.proprio_std
    with torch.no_grad():
        window = model.filter_window(images, actions, states)
        torch.testing.assert_close(window.proprio, standardized)
        torch.testing.assert_close(model.proprio_tie(torch.cat([window.deters, window.post_mean], -1), window.proprio),
                                   ((robot(model, window.deters) - standardized) ** 2).sum(-1).mean())
        torch.manual_seed(7)
        got = float(model.open_loop_terms(window, torch.ones(2, 12, 1, 64, 64))["open_loop_proprio_tie"])
        torch.manual_seed(7)
        steps = int(torch.randint(1, min(OPEN_LOOP_HORIZON, 11) + 1, ()))
        per_step, counts = torch.zeros(steps), torch.zeros(steps)
        for t in range(0, 11, OPEN_LOOP_START_STRIDE):
            reach = min(steps, 11 - t)
            latents = model.rollout(window.deters[:, t], window.post_mean[:, t], window.prev[:, t + 1:t + 1 + reach])
            errors = ((robot(model, latents) - standardized[:, t + 1:t + 1 + reach]) ** 2).sum(-1)  # [B, reach]
            per_step[:reach] += errors.sum(0)
            counts[:reach] += 2
    assert steps >= 2  # seed 7 draws a horizon of several steps
    np.testing.assert_allclose(got, float((per_step / counts).mean()), rtol=1e-4)
    assert got > 0.01  # an untrained robot state reads nothing


def test_the_ties_add_at_their_weight_and_the_open_loop_one_trains_only_the_dynamics(maze_dataset):
    """The open-loop tie's rollouts start from filtered states held fixed, so its gradient reaches the transition,
    never the encoder or the posterior (whose points would then follow the robot alone)."""
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
    for part in (model.robot_step, model.robot_correction, model.cell, model.input_layer, model.prior_net):
        assert all(p.grad.abs().sum() > 0 for p in part.parameters())
    for part in (model.encoder, model.posterior_net):
        assert all(p.grad is None for p in part.parameters())


@pytest.mark.parametrize("tie_only", [False, True])
def test_with_robot_tie_only_no_image_loss_reaches_the_robot_dynamics(maze_dataset, tie_only):
    """Without the option the reconstruction and the KL bend the robot state's correction too; with it only the ties
    train it. It routes gradients only: the losses are the same numbers either way."""
    model = proprio_model(maze_dataset)
    torch.nn.init.normal_(model.robot_correction.weight, std=0.1)  # so that the rolled state depends on it
    images, actions, states = window_tensors(maze_dataset, 0, 8)
    losses = {}
    for option in (not tie_only, tie_only):
        model.config = model.config.replace(robot_tie_only=option)
        torch.manual_seed(3)
        window = model.filter_window(images, actions, states)
        losses[option] = float(model.elbo(window)[0])
    assert losses[True] == losses[False]
    model.zero_grad()
    reconstruction = ((model.decode(window.features) - window.frames) ** 2).sum()
    (reconstruction + model.kl(window.post_params, window.prior_params).sum()).backward()
    image_grad = model.robot_correction.weight.grad
    assert (image_grad is not None and bool(image_grad.abs().sum() > 0)) != tie_only
    model.zero_grad()
    model.open_loop_terms(window, torch.ones(2, 8, 1, 64, 64))["open_loop_proprio_tie"].backward()
    assert model.robot_correction.weight.grad.abs().sum() > 0  # the ties train it either way


def test_a_model_with_the_tie_needs_the_states_and_the_config_names_what_is_wrong(maze_dataset):
    model = proprio_model(maze_dataset)
    images, actions, _ = window_tensors(maze_dataset, 0, 8)
    with pytest.raises(ValueError, match="states"):
        model(images, actions)
    with pytest.raises(ValueError, match="proprio_weight"):
        RSSMConfig.preset("debug", proprio_weight=-1.0, proprio_dim=4)
    with pytest.raises(ValueError, match="proprio_dim"):
        RSSMConfig.preset("debug", proprio_weight=1.0)
    with pytest.raises(ValueError, match="proprio_dim"):
        RSSMConfig.preset("debug", proprio_weight=1.0, proprio_dim=16)  # the debug h has 16 dims
    with pytest.raises(ValueError, match="proprio_weight"):
        checkpoint.build_model("rssm", RSSMConfig.preset("debug")).set_proprio_scale(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="robot_tie_only needs a robot state"):
        RSSMConfig.preset("debug", robot_tie_only=True)


def test_hvp_train_proprio_weight_lowers_the_tie_and_round_trips(maze_file, maze_dataset, tmp_path):
    from hvp.cli import main

    out = tmp_path / "proprio"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "100",
                 "--lr", "5e-3", "--proprio-weight", "10", "--robot-tie-only", "--threads", "1",
                 "--no-progress"]) == 0
    ties = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True)["open_loop_proprio_tie"]
    assert ties[-3:].mean() < 0.6 * ties[:3].mean()  # the rollout learns to carry the robot's state
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["proprio_weight"] == 10.0 and config["model"]["robot_tie_only"]
    assert config["model"]["proprio_dim"] == maze_dataset.episodes[0]["state"].shape[1]
    states = np.concatenate([e["state"] for e in maze_dataset.episodes])
    np.testing.assert_allclose(model.proprio_mean.numpy(), states.mean(0), rtol=1e-4, atol=1e-5)
    runtime = load_runtime(out)  # planning and prediction need images and actions only
    latents = runtime.encode(maze_dataset.episodes[0]["image"][:3])
    assert runtime.decode(latents).shape == (3, 64, 64, 3)
