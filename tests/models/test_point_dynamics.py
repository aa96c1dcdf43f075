"""Point dynamics (RSSMConfig.point_dynamics): h carries the encoder's keypoints, set to the points the encoder finds
after each frame, stepped by their own MLP, drawn by the decoder where they are, and tied open-loop to later frames'
points in units of each coordinate's step."""
import numpy as np
import pytest
import torch

from hvp.config import ConfigError
from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.networks import to_float_images
from hvp.models.rssm import point_step_scale
from hvp.models.runtime import TorchRuntime

KEYPOINTS = 3


def point_model(**overrides):
    torch.manual_seed(0)
    return checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=KEYPOINTS, point_dynamics=True,
                                                            **overrides))


def windows(dataset, count=3, length=8):
    batch = dataset.sample_windows(np.random.default_rng(0), count, length)
    return torch.from_numpy(batch["image"]), torch.from_numpy(batch["action"].astype(np.float32))


def encoder_points(model, images):
    with torch.no_grad():
        return model.embed(to_float_images(images))[..., -2 * KEYPOINTS:]


def test_the_filter_and_the_runtime_hold_the_points_the_encoder_finds(maze_dataset):
    model = point_model()
    images, actions = windows(maze_dataset)
    start, stop = model.point_dims
    assert stop - start == 2 * KEYPOINTS and stop == model.config.deter_dim  # no robot state: the last dims
    found = encoder_points(model, images)
    with torch.no_grad():
        window = model.filter_window(images, actions)
    torch.testing.assert_close(window.deters[..., start:stop], found)
    runtime = TorchRuntime(model, threads=1)
    state = runtime.observe(runtime.initial_state(3), images[:, 0].numpy(), np.zeros((3, actions.shape[-1]),
                                                                                     np.float32))
    np.testing.assert_allclose(state["deter"][:, start:stop], found[:, 0].numpy(), atol=1e-6)


def test_the_points_move_only_by_their_step_and_are_drawn_where_they_are(maze_dataset):
    model = point_model()
    images, actions = windows(maze_dataset)
    start, stop = model.point_dims
    with torch.no_grad():
        deter, stoch = model.initial(3)
        deter, stoch = model.observe_step(deter, stoch, actions[:, 0], model.embed(to_float_images(images))[:, 0])
        still = model.rollout(deter, stoch, actions[:, 1:5])  # the step starts at zero: the points held
        torch.testing.assert_close(still[..., start:stop], deter[:, None, start:stop].expand(-1, 4, -1))
        torch.nn.init.normal_(model.point_step[-1].weight, std=0.1)
        moved = model.rollout(deter, stoch, actions[:, 1:5])[..., start:stop]
        stepped = deter[:, start:stop] + model.point_step(torch.cat([deter[:, start:stop], actions[:, 1]], -1))
        torch.testing.assert_close(moved[:, 0], stepped)
        assert not torch.allclose(moved[:, 0], deter[:, start:stop])
        latents = torch.cat([deter, stoch], -1)
        torch.testing.assert_close(model.decoder.drawn_points(latents).flatten(1), deter[:, start:stop])
    assert model.decoder.keypoint_head is None  # no head reads them: they are drawn as h holds them


def test_the_open_loop_tie_trains_the_step_and_not_the_encoder(maze_dataset):
    model = point_model(reference_blend=True)
    images, actions = windows(maze_dataset)
    window = model.filter_window(images, actions)
    loss, metrics = model.elbo(window)
    assert "keypoint_tie" not in metrics and metrics["open_loop_point_tie"] > 0
    model.zero_grad()
    (model.open_loop_terms(window, torch.ones_like(window.frames[:, :, :1]))["open_loop_point_tie"]).backward()
    assert model.point_step[-1].weight.grad.abs().sum() > 0
    assert model.encoder.keypoints.score.weight.grad is None  # its starts and targets are held fixed
    scale = point_step_scale(window.points)
    assert scale.shape == (2 * KEYPOINTS,) and (scale >= 1e-3).all()


def test_a_model_with_point_dynamics_learns_to_move_the_points(maze_dataset):
    model = point_model()
    images, actions = windows(maze_dataset, count=8, length=10)
    window = model.filter_window(images, actions)
    optimizer = torch.optim.Adam(model.point_step.parameters(), lr=1e-3)
    ties = []
    for _ in range(200):
        torch.manual_seed(1)  # the same rollout horizon each update: the tie is compared like for like
        tie = model.open_loop_terms(window, torch.ones(1))["open_loop_point_tie"]
        optimizer.zero_grad()
        tie.backward(retain_graph=True)
        optimizer.step()
        ties.append(tie.item())
    assert ties[-1] < 0.6 * ties[0]


def robot_model_start(model, dataset):
    """A model with a robot state of 4 dims -> (h, z) after one frame, with a random robot state, and the actions."""
    images, actions = windows(dataset)
    deter, stoch = model.initial(3)
    deter, stoch = model.observe_step(deter, stoch, actions[:, 0], model.embed(to_float_images(images))[:, 0])
    deter[:, -4:] = torch.randn(3, 4)
    return deter, stoch, actions


def test_with_contact_from_points_the_point_mlp_corrects_the_robot_state(maze_dataset):
    model = point_model(proprio_weight=1.0, proprio_dim=4, contact_from_points=True)
    assert not hasattr(model, "robot_correction")
    start, stop = model.point_dims
    robot = slice(stop, model.config.deter_dim)
    with torch.no_grad():
        deter, stoch, actions = robot_model_start(model, maze_dataset)
        linear = model.robot_step(torch.cat([deter[:, robot], actions[:, 1]], -1))
        torch.testing.assert_close(model.transition(deter, stoch, actions[:, 1])[:, robot], linear)  # starts at 0
        torch.nn.init.normal_(model.point_step[-1].weight[stop - start:], std=0.1)  # the correction's rows only
        corrected = model.transition(deter, stoch, actions[:, 1])
        inputs = torch.cat([deter[:, start:stop], deter[:, robot], actions[:, 1]], -1)
        torch.testing.assert_close(corrected[:, robot],
                                   linear + torch.tanh(model.point_step(inputs)[:, stop - start:]))
        torch.testing.assert_close(corrected[:, start:stop], deter[:, start:stop])  # the points' rows still zero
    assert not torch.allclose(corrected[:, robot], linear)


def test_with_points_follow_robot_each_point_also_moves_by_its_gate_times_the_robot_states_free_step(maze_dataset):
    model = point_model(proprio_weight=1.0, proprio_dim=4, robot_step_fit=True, points_follow_robot=True)
    start, stop = model.point_dims
    robot = slice(stop, model.config.deter_dim)
    with torch.no_grad():
        deter, stoch, actions = robot_model_start(model, maze_dataset)
        torch.nn.init.normal_(model.robot_step.weight, std=0.5)  # the robot moves freely
        still = model.transition(deter, stoch, actions[:, 1])[:, start:stop]
        torch.testing.assert_close(still, deter[:, start:stop])  # the image of its step starts at zero
        torch.nn.init.normal_(model.robot_follow.weight)
        torch.nn.init.normal_(model.point_step[-1].weight[stop - start:], std=0.5)  # the gates' rows only
        moved = model.transition(deter, stoch, actions[:, 1])[:, start:stop]
        gates = torch.sigmoid(model.point_step(torch.cat([deter[:, start:stop], deter[:, robot], actions[:, 1]],
                                                         -1))[:, stop - start:])
        free_step = model.robot_step(torch.cat([deter[:, robot], actions[:, 1]], -1)) - deter[:, robot]
        seen = model.robot_follow(free_step)
        torch.testing.assert_close(moved, deter[:, start:stop] + (gates[:, :, None] * seen[:, None]).flatten(1))
    assert gates.shape == (3, KEYPOINTS) and not torch.allclose(moved, still)


@pytest.mark.parametrize("contact", [False, True])
def test_free_motion_residual_trains_the_mlps_own_moves_toward_zero_on_steps_without_contact(maze_dataset, contact):
    from hvp.models.fit import robot_step_from

    model = point_model(proprio_weight=1.0, proprio_dim=4, robot_step_fit=True, points_follow_robot=True,
                        contact_from_points=contact)
    model.set_proprio_scale(torch.from_numpy(np.concatenate([e["state"] for e in maze_dataset.episodes])).float())
    model.set_robot_step(*robot_step_from(maze_dataset, model))
    batch = maze_dataset.sample_windows(np.random.default_rng(0), 4, 10)
    window = model.filter_window(*(torch.from_numpy(batch[key].astype(np.float32) if key != "image" else batch[key])
                                   for key in ("image", "action", "state")))
    assert model.free_motion_residual(window) == 0  # the MLP's last layer starts at zero
    window.proprio[:2, 5] += 1.0  # a push off the free step: steps 4 and 5 of two windows are not free
    torch.nn.init.normal_(model.point_step[-1].weight, std=0.1)
    residual = model.free_motion_residual(window)
    robot, actions = window.proprio[:, :-1], window.prev[:, 1:]
    with torch.no_grad():
        free = (window.proprio[:, 1:] - model.robot_step(torch.cat([robot, actions], -1))).abs().amax(-1) < 1e-3
        outputs = model.point_step(torch.cat([window.points[:, :-1].flatten(-2), robot, actions], -1))
        expected = ((outputs[..., :6] / point_step_scale(window.points)) ** 2).mean(-1)
        if contact:  # the robot state's correction, the MLP's last 4 outputs, in units of the state's steps
            expected += ((torch.tanh(outputs[..., -4:]) / point_step_scale(window.proprio)) ** 2).mean(-1)
        expected = expected[free].mean()
    assert free.float().mean() > 0.5 and not free[:2, 4:6].any()
    torch.testing.assert_close(residual.detach(), expected)
    model.zero_grad()
    residual.backward()
    assert model.point_step[-1].weight.grad.abs().sum() > 0 and model.encoder.keypoints.score.weight.grad is None
    with torch.no_grad():
        model.robot_step.bias.fill_(10.0)  # no recorded step is free: nothing to train
    assert model.free_motion_residual(window) == 0


def test_hvp_train_points_follow_robot_learns_the_robots_image_and_round_trips(maze_file, maze_dataset, tmp_path):
    from hvp.cli import main

    out = tmp_path / "follow"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "30",
                 "--keypoints", str(KEYPOINTS), "--point-dynamics", "--proprio-weight", "10", "--robot-step-fit",
                 "--points-follow-robot", "--threads", "1", "--no-progress"]) == 0
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["points_follow_robot"]
    assert model.robot_follow.weight.abs().sum() > 0  # trained away from its zero start by the points' tie
    runtime = TorchRuntime(model, threads=1)
    episode = maze_dataset.episodes[0]
    state = runtime.observe(runtime.initial_state(1), episode["image"][:1], np.zeros((1, 2), np.float32))
    assert runtime.imagine(state, episode["action"][None, :4].astype(np.float32)).shape == (1, 4, runtime.latent_dim)


@pytest.mark.parametrize("overrides, named", [
    (dict(keypoints=0, point_dynamics=True), "point_dynamics needs keypoints"),
    (dict(keypoints=2, point_dynamics=True, proprio_weight=1.0, proprio_dim=4, robot_points=True),
     "point_dynamics needs keypoints"),
    (dict(keypoints=20, point_dynamics=True, deter_dim=40), "deter_dim must exceed"),
    (dict(keypoints=2, point_dynamics=True, contact_from_points=True), "contact_from_points needs point dynamics"),
    (dict(keypoints=2, proprio_weight=1.0, proprio_dim=4, contact_from_points=True),
     "contact_from_points needs point dynamics"),
    (dict(keypoints=2, point_dynamics=True, proprio_weight=1.0, proprio_dim=4, points_follow_robot=True),
     "points_follow_robot needs point dynamics"),
    (dict(keypoints=2, proprio_weight=1.0, proprio_dim=4, robot_step_fit=True, points_follow_robot=True),
     "points_follow_robot needs point dynamics"),
])
def test_bad_point_dynamics_configs_are_named(overrides, named):
    with pytest.raises(ConfigError, match=named):
        RSSMConfig.preset("debug", **overrides)
