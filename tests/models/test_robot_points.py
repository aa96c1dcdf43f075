"""The robot drawn from its state (RSSMConfig.robot_points): the decoder draws K more points, read linearly from the
robot state h holds, and tied through the recorded state to the points the encoder finds."""
import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.config import RSSMConfig


def robot_point_model(maze_dataset):
    torch.manual_seed(0)
    states = np.concatenate([e["state"] for e in maze_dataset.episodes])
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=2, proprio_weight=10.0,
                                                             proprio_dim=states.shape[1], robot_points=True))
    model.set_proprio_scale(torch.from_numpy(states))
    return model


def test_the_robot_points_are_read_from_the_robot_state_alone_and_drawn(maze_dataset):
    model = robot_point_model(maze_dataset)
    deter, size = model.config.deter_dim, model.config.proprio_dim
    features = torch.randn(3, model.config.latent_dim)
    points = model.decoder.drawn_points(features)
    assert points.shape == (3, 4, 2)  # the 2 read from the whole latent, then the 2 from the robot state
    elsewhere = features.clone()
    elsewhere[:, :deter - size] += 1.0
    elsewhere[:, deter:] += 1.0
    torch.testing.assert_close(model.decoder.drawn_points(elsewhere)[:, 2:], points[:, 2:])
    moved = features.clone()
    moved[:, deter - size:deter] += 1.0
    assert (model.decoder.drawn_points(moved)[:, 2:] - points[:, 2:]).abs().min() > 0
    # the drawn image follows the robot's points: moving only them changes the frame
    before = model.decode(features).detach()
    with torch.no_grad():
        model.decoder.robot_point_head.bias.add_(0.5)
    assert (model.decode(features) - before).abs().max() > 1e-4


def test_the_tie_fits_the_head_to_the_encoders_points_and_leaves_the_robot_state_to_its_own(maze_dataset):
    model = robot_point_model(maze_dataset)
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 8)
    images, actions, states = (torch.from_numpy(windows[key]) for key in ("image", "action", "state"))
    window = model.filter_window(images, actions, states)
    _, metrics = model.elbo(window)
    tie = model.robot_point_tie(window.proprio, window.points)
    assert float(metrics["robot_point_tie"]) == pytest.approx(tie.item(), rel=1e-6) and tie.item() > 0
    model.zero_grad()
    tie.backward()
    assert model.decoder.robot_point_head.weight.grad.abs().sum() > 0
    for part in (model.robot_step, model.robot_correction, model.cell, model.encoder, model.decoder.keypoint_head):
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in part.parameters())
    # the image loss teaches the head where the robot is seen, and does not reach the robot state through it
    features = torch.randn(2, model.config.latent_dim, requires_grad=True)
    model.decoder.drawn_points(features)[:, 2:].sum().backward()
    assert features.grad.abs().sum() == 0


def test_robot_points_need_keypoints_and_a_robot_state():
    for missing in (dict(keypoints=0, proprio_weight=1.0, proprio_dim=4), dict(keypoints=2)):
        with pytest.raises(ValueError, match="robot_points needs keypoints"):
            RSSMConfig.preset("debug", robot_points=True, **missing)


def test_hvp_train_robot_points_lowers_their_tie_and_round_trips(maze_file, tmp_path):
    from hvp.cli import main
    from hvp.models.runtime import load_runtime

    out = tmp_path / "robot-points"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "60", "--lr", "5e-3",
                 "--keypoints", "2", "--proprio-weight", "10", "--robot-points", "--threads", "1",
                 "--no-progress"]) == 0
    ties = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True)["robot_point_tie"]
    assert ties[-3:].mean() < 0.7 * ties[:3].mean()  # the head learns where the points are
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["robot_points"] is True
    assert model.decoder.robot_point_head is not None
    runtime = load_runtime(out)
    assert runtime.decode(runtime.encode(np.zeros((2, 64, 64, 3), np.uint8))).shape == (2, 64, 64, 3)
