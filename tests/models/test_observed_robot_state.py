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


def test_the_planner_hands_the_measured_state_to_a_model_that_observes_it(maze_dataset):
    from hvp.planners import make_optimizer
    from hvp.planners.costs import LatentDistance
    from hvp.planners.mpc import LatentMPC, MPCConfig

    model = observing_model(maze_dataset)
    runtime = TorchRuntime(model, threads=1)
    config = MPCConfig.preset("cpu", horizon=3, proprio=True)
    optimizer = make_optimizer("cem", preset="debug")
    with pytest.raises(ValueError, match="proprio: the runtime's world model observes"):
        LatentMPC(runtime, optimizer, LatentDistance(), MPCConfig.preset("cpu", horizon=3))
    controller = LatentMPC(runtime, optimizer, LatentDistance(), config)
    episode = maze_dataset.episodes[0]
    state = controller.reset(episode["image"][-1])
    state, action = controller.act(state, {"image": episode["image"][0], "state": episode["state"][0]})
    size = model.config.proprio_dim
    held = state["belief"]["deter"][0, -size:] * model.proprio_std.numpy() + model.proprio_mean.numpy()
    np.testing.assert_allclose(held, episode["state"][0], atol=1e-5)
    assert action.shape == (runtime.action_dim,)


class RobotDims:
    """A readout of the belief's robot-state dims, and dynamics that hold any state still: enough to see where
    a state-space runtime takes the measured state."""

    def __init__(self, model):
        self.deter, self.size = model.config.deter_dim, model.config.proprio_dim
        self.state_dim, self.action_dim, self.history = self.size, model.config.action_dim, 1

    def states(self, latents):
        return latents[:, self.deter - self.size:self.deter]

    def rollout(self, states, recent_actions, actions):
        return np.repeat(states[:, None], actions.shape[1], axis=1)


def test_a_state_space_runtime_hands_the_measured_state_to_the_belief_it_reads(maze_dataset):
    from hvp.planners.state_space import StateSpaceRuntime

    model = observing_model(maze_dataset)
    dims = RobotDims(model)
    space = StateSpaceRuntime(TorchRuntime(model, threads=1), dims, dims)  # no proprio_dims: the belief takes it
    assert space.observes_robot_state
    episode = maze_dataset.episodes[0]
    state = space.observe(space.initial_state(1), episode["image"][:1], np.zeros((1, 2), np.float32))
    measured = space.observe_proprio(state, episode["state"][:1])
    standardized = (episode["state"][:1] - model.proprio_mean.numpy()) / model.proprio_std.numpy()
    np.testing.assert_allclose(space.latent(measured), standardized, rtol=1e-5, atol=1e-6)
    assert np.abs(space.latent(state) - standardized).max() > 1e-3  # before the measurement the belief guessed


def test_the_playground_observe_takes_the_measured_state(maze_dataset):
    import hvp

    model = observing_model(maze_dataset)
    runtime = TorchRuntime(model, threads=1)
    episode = maze_dataset.episodes[0]
    state = runtime.initial_state(1)
    with pytest.raises(ValueError, match="proprio: this model observes"):
        hvp.observe(runtime, state, episode["image"][0], np.zeros(2, np.float32))
    single = hvp.observe(runtime, state, episode["image"][0], np.zeros(2, np.float32), episode["state"][0])
    direct = runtime.observe_proprio(runtime.observe(state, episode["image"][:1], np.zeros((1, 2), np.float32)),
                                     episode["state"][:1])
    for key in single:
        np.testing.assert_array_equal(single[key], direct[key])
