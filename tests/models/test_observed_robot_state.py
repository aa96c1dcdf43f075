"""The robot state observed (RSSMConfig.observe_robot_state): the filter sets h's robot-state dims to the measured
state after each frame, in training (filter_window) as in the runtime (observe, then observe_proprio)."""
import numpy as np
import pytest
import torch

from hvp.contracts import filter_episodes
from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.evaluate import imagine_with_runtime, predict_with_runtime
from hvp.models.networks import to_uint8_images
from hvp.models.runtime import TorchRuntime


def observing_model(maze_dataset, **overrides):
    torch.manual_seed(0)
    states = np.concatenate([e["state"] for e in maze_dataset.episodes])
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", proprio_weight=10.0, proprio_dim=states.shape[1],
                                                             observe_robot_state=True, **overrides))
    model.set_proprio_scale(torch.from_numpy(states))
    return model


def windows(dataset, count=3, length=8):
    batch = dataset.sample_windows(np.random.default_rng(0), count, length)
    return batch["image"], batch["action"].astype(np.float32), batch["state"].astype(np.float32)


def test_the_filter_holds_the_measured_robot_state_and_trains_the_dynamics_on_it(maze_dataset):
    model = observing_model(maze_dataset)
    images, actions, states = (torch.from_numpy(array) for array in windows(maze_dataset))
    window = model.filter_window(images, actions, states)
    robot = window.deters[..., -model.config.proprio_dim:]
    torch.testing.assert_close(robot, (states - model.proprio_mean) / model.proprio_std)
    loss, metrics = model.elbo(window)
    assert "proprio_tie" not in metrics  # the filtered state is the measured one: nothing to tie
    assert metrics["open_loop_proprio_tie"] > 0  # rolled open loop from it, the dynamics still learn to step it
    model.zero_grad()
    loss.backward()
    assert model.robot_step.weight.grad.abs().sum() > 0


def test_the_runtime_observes_the_state_as_training_filters_it(maze_dataset):
    model = observing_model(maze_dataset, reference_blend=True)
    images, actions, states = windows(maze_dataset)
    runtime = TorchRuntime(model, threads=1)
    assert runtime.observes_robot_state
    through_runtime = predict_with_runtime(runtime, images, actions, 4, proprio=states)
    with torch.no_grad():
        direct = model.predict_video(*(torch.from_numpy(a) for a in (images, actions)), 4, torch.from_numpy(states))
    assert np.abs(through_runtime.astype(int) - to_uint8_images(direct).numpy().astype(int)).max() <= 1
    # observe_proprio sets the robot dims only, and returns a new state
    state = runtime.observe(runtime.initial_state(3), images[:, 0], np.zeros_like(actions[:, 0]))
    kept = {key: value.copy() for key, value in state.items()}
    measured = runtime.observe_proprio(state, states[:, 0])
    size = model.config.proprio_dim
    np.testing.assert_allclose(measured["deter"][:, -size:],
                               (states[:, 0] - model.proprio_mean.numpy()) / model.proprio_std.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(measured["deter"][:, :-size], state["deter"][:, :-size])
    np.testing.assert_array_equal(measured["stoch"], state["stoch"])
    for key in kept:
        np.testing.assert_array_equal(state[key], kept[key])
    # the probe's filter feeds each episode's recorded states too
    beliefs, rows = filter_episodes(runtime, maze_dataset.episodes[:2])
    recorded = np.concatenate([e["state"] for e in maze_dataset.episodes[:2]])
    np.testing.assert_allclose(beliefs["deter"][:, -size:] * model.proprio_std.numpy() + model.proprio_mean.numpy(),
                               recorded, atol=1e-5)
    assert len(rows) == len(recorded)


def test_bad_or_missing_measurements_raise_named_errors(maze_dataset):
    model = observing_model(maze_dataset)
    images, actions, states = windows(maze_dataset)
    runtime = TorchRuntime(model, threads=1)
    with pytest.raises(ValueError, match="proprio: this model observes"):
        imagine_with_runtime(runtime, images, actions, 4)
    with pytest.raises(ValueError, match="states: this model observes"):
        model.predict_video(torch.from_numpy(images), torch.from_numpy(actions), 4)
    state = runtime.initial_state(3)
    with pytest.raises(ValueError, match="proprio"):
        runtime.observe_proprio(state, states[:2, 0])
    with pytest.raises(ValueError, match="proprio: expected finite"):
        runtime.observe_proprio(state, np.full_like(states[:, 0], np.nan))
    unobserving = TorchRuntime(checkpoint.build_model("rssm", RSSMConfig.preset("debug")), threads=1)
    assert not unobserving.observes_robot_state
    with pytest.raises(TypeError, match="trained without observe_robot_state"):
        unobserving.observe_proprio(unobserving.initial_state(3), states[:, 0])
    with pytest.raises(ValueError, match="observe_robot_state needs a robot state"):
        RSSMConfig.preset("debug", observe_robot_state=True)


def test_hvp_train_observe_robot_state_round_trips(maze_file, tmp_path):
    from hvp.cli import main
    from hvp.models.runtime import load_runtime

    out = tmp_path / "observed"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "20",
                 "--proprio-weight", "10", "--observe-robot-state", "--threads", "1", "--no-progress"]) == 0
    names = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True).dtype.names
    assert "open_loop_proprio_tie" in names and "proprio_tie" not in names
    assert load_runtime(out).observes_robot_state
    assert any((out / "previews").iterdir())  # previews drawn with the recorded states
