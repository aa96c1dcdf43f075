"""Image points for small objects (RSSMConfig.keypoints): the encoder's spatial softmax, the decoder's drawn bumps."""
import math

import numpy as np
import pytest
import torch

from hvp.models import checkpoint, rssm
from hvp.models.config import RSSMConfig
from hvp.models.fit import background_frames
from hvp.models.networks import ConvDecoder, ConvEncoder, SpatialSoftmax, to_float_images, to_uint8_images
from hvp.models.rssm import KEYPOINT_TIE_WEIGHT
from hvp.models.runtime import load_runtime
from open_loop_check import direct_open_loop


def cell_centre(index: int, cells: int) -> float:
    return (index + 0.5) / cells * 2 - 1


def scoring_its_feature() -> SpatialSoftmax:
    """One point over a 16x16 map of one channel, each cell's score its feature."""
    points = SpatialSoftmax(channels=1, keypoints=1, size=(16, 16))
    with torch.no_grad():
        points.score.weight.fill_(1.0)
        points.score.bias.zero_()
    return points


def test_the_spatial_softmax_finds_the_cell_that_scores_highest():
    points = scoring_its_feature()
    features = torch.zeros(2, 1, 16, 16)
    features[0, 0, 3, 10] = features[1, 0, 12, 1] = 60.0  # (row, column)
    expected = torch.tensor([[cell_centre(10, 16), cell_centre(3, 16)], [cell_centre(1, 16), cell_centre(12, 16)]])
    torch.testing.assert_close(points(features), expected)


def test_cells_off_the_foreground_are_passed_over_unless_none_is_on_it():
    points = scoring_its_feature()
    features = torch.zeros(2, 1, 16, 16)
    features[:, 0, 3, 10] = 60.0  # the best score, off the foreground
    features[:, 0, 12, 1] = 30.0
    cells = torch.zeros(2, 1, 16, 16)
    cells[0, 0, 12, 1] = 1.0  # image 0: one foreground cell; image 1: none
    torch.testing.assert_close(points(features, cells), torch.tensor([[cell_centre(1, 16), cell_centre(12, 16)],
                                                                      [cell_centre(10, 16), cell_centre(3, 16)]]))
    torch.testing.assert_close(points(features, cells)[1], points(features)[1])


COLUMNS = range(4, 58, 6)  # of a 2-pixel dot, one per frame: each inside one cell of either map


@pytest.mark.parametrize("layers", [1, 2])
def test_an_encoder_on_the_foreground_puts_every_point_on_the_one_object_that_moved(layers):
    """A 2-pixel dot on a fixed scene: whatever the random scores prefer, each point lands in the dot's cell."""
    torch.manual_seed(0)
    encoder = ConvEncoder((64, 64), depth=4, keypoints=5, keypoint_layers=layers, foreground_threshold=0.15)
    scene = torch.rand(3, 64, 64) - 0.5
    frames = scene.repeat(9, 1, 1, 1)
    for frame, column in zip(frames, COLUMNS):
        frame[:, 20:22, column:column + 2] = -0.5 * scene[:, 20:22, column:column + 2].sign()  # far from it
    encoder.set_point_background(frames)  # the dot is somewhere else in each frame: the median is the scene
    torch.testing.assert_close(encoder.point_background, scene)
    cells = 64 // 2 ** layers
    found = encoder.points(frames).unflatten(-1, (-1, 2))
    expected = torch.tensor([[cell_centre(column // 2 ** layers, cells), cell_centre(20 // 2 ** layers, cells)]
                             for column in COLUMNS])
    torch.testing.assert_close(found, expected[:, None].expand_as(found))
    weights = encoder.point_weights(frames)
    assert weights.shape == (9, 5, cells * cells) and torch.allclose(weights.sum(-1), torch.ones(9, 5))
    plain = ConvEncoder((64, 64), depth=4, keypoints=5, keypoint_layers=layers)
    plain.load_state_dict({k: v for k, v in encoder.state_dict().items() if k != "point_background"})
    assert not torch.allclose(plain.points(frames), encoder.points(frames))  # the random scores alone miss the dot
    with pytest.raises(ValueError, match=r"frames: expected \[N, 3, 64, 64\]"):
        encoder.set_point_background(frames[:, :, :32])
    with pytest.raises(ValueError, match="without a foreground"):
        plain.set_point_background(frames)


@pytest.mark.parametrize("point", [(-0.6, 0.3), (0.5, -0.75)])
def test_the_decoder_draws_a_point_where_its_head_reads_it(point):
    """Everything but the point's own path zeroed: the image is its bump, painted by the last transposed conv."""
    decoder = ConvDecoder(feature_dim=4, image_size=(64, 64), depth=4, keypoints=1)
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.zero_()
        decoder.keypoint_head.bias.copy_(torch.tensor([math.atanh(point[0]), math.atanh(point[1])]))
        decoder.net[-1].weight[4].fill_(1.0)  # the last layer's input channel after the 4 conv maps: the bump
        image = decoder(torch.zeros(1, 4))[0, 0]
    row, column = np.unravel_index(int(image.argmax()), image.shape)
    assert abs(column + 0.5 - (point[0] + 1) * 32) <= 1.5 and abs(row + 0.5 - (point[1] + 1) * 32) <= 1.5
    rows, columns = np.indices(image.shape)
    far = np.hypot(rows - row, columns - column) > 12  # 4.5 widths of the bump
    assert float(image[far].abs().max()) < 0.01 * float(image[row, column])  # nothing drawn away from the point


def test_the_rssm_feeds_the_points_to_its_posterior_and_trains_both_heads(maze_dataset):
    torch.manual_seed(0)
    plain = checkpoint.build_model("rssm", RSSMConfig.preset("debug"))
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=3))
    assert model.encoder.output_dim == plain.encoder.output_dim + 6
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 6)
    images, actions = torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"])
    points = model.embed(model.filter_window(images, actions).frames)[..., -6:]
    assert points.abs().max() <= 1
    loss, _ = model(images, actions)
    loss.backward()
    assert model.encoder.keypoints.score.weight.grad.abs().sum() > 0
    assert model.decoder.keypoint_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("overrides, named", [(dict(keypoints=-1), "keypoints must be >= 0"),
                                              (dict(keypoints=2, keypoint_layers=0), "keypoint_layers must be in"),
                                              (dict(keypoints=2, keypoint_layers=4), "keypoint_layers must be in"),
                                              (dict(points_on_foreground=True),
                                               "points_on_foreground needs keypoints")])
def test_bad_keypoint_configs_are_refused_by_name(overrides, named):
    with pytest.raises(ValueError, match=named):
        RSSMConfig.preset("debug", **overrides)


def test_one_layer_finds_the_points_on_a_map_twice_as_fine(maze_dataset):
    images = to_float_images(torch.from_numpy(maze_dataset.episodes[0]["image"][:4]))
    coarse, fine = (checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=3, keypoint_layers=layers))
                    for layers in (2, 1))
    assert coarse.encoder.point_map(images).shape[-2:] == (16, 16)
    assert fine.encoder.point_map(images).shape[-2:] == (32, 32) and fine.encoder.keypoints.grid.shape == (1024, 2)
    assert fine.encoder(images).shape == coarse.encoder(images).shape  # the rest of the model is unchanged


@pytest.mark.parametrize("layers, on_foreground", [(None, False), (1, False), (1, True)])
def test_hvp_train_keypoints_round_trips_through_its_checkpoint(maze_file, maze_dataset, tmp_path, layers,
                                                                on_foreground):
    from hvp.cli import main
    from hvp.models.config import TrainConfig

    out = tmp_path / "cli"
    finer = ["--keypoint-layers", str(layers)] if layers else []
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "2",
                 "--keypoints", "2", *finer, *["--points-on-foreground"] * on_foreground, "--threads", "1",
                 "--no-progress"]) == 0
    _, model, config = checkpoint.load_model(out)
    assert config["model"]["keypoints"] == 2 and config["model"]["keypoint_layers"] == (layers or 2)
    assert config["model"]["points_on_foreground"] is on_foreground
    if on_foreground:  # the empty scene is the training frames' median, saved with the weights
        preset = TrainConfig.preset("debug")
        frames = background_frames(maze_dataset, preset.seed, preset.seq_len, torch.device("cpu"))
        torch.testing.assert_close(model.encoder.point_background, frames.median(dim=0).values)
    runtime = load_runtime(out)
    images = maze_dataset.episodes[0]["image"][:3]
    latents = runtime.encode(images)
    with torch.no_grad():
        direct = model.decode(torch.from_numpy(latents))
    np.testing.assert_array_equal(runtime.decode(latents), to_uint8_images(direct).numpy())


def test_the_tie_pulls_the_latent_to_the_encoders_points_and_leaves_the_encoder_alone(maze_dataset, monkeypatch):
    """keypoint_tie against a direct sum; its gradient reaches the decoder's head and (open loop) the transition,
    never the encoder's points it is pulled to; elbo adds both ties at KEYPOINT_TIE_WEIGHT."""
    torch.manual_seed(0)
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=2))
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 8)
    window = model.filter_window(torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"]))
    tie = model.keypoint_tie(window.features, window.points)
    drawn = model.decoder.keypoints(window.features.flatten(0, 1)).reshape(2, 8, 2, 2)
    torch.testing.assert_close(tie, ((drawn - window.points) ** 2).sum((2, 3)).mean())
    model.zero_grad()
    model.open_loop_terms(window, torch.ones(2, 8, 1, 64, 64))["open_loop_keypoint_tie"].backward(retain_graph=True)
    assert model.cell.state_gates.weight.grad.abs().sum() > 0
    assert model.decoder.keypoint_head.weight.grad.abs().sum() > 0
    targets = window.points.detach().requires_grad_()
    model.keypoint_tie(window.features, targets).backward(retain_graph=True)
    assert targets.grad is None
    torch.manual_seed(3)  # the same open-loop horizon for both losses
    loss, metrics = model.elbo(window)
    monkeypatch.setattr(rssm, "KEYPOINT_TIE_WEIGHT", 0.0)
    torch.manual_seed(3)
    untied, _ = model.elbo(window)
    ties = float(metrics["keypoint_tie"] + metrics["open_loop_keypoint_tie"])
    assert ties > 0
    np.testing.assert_allclose(float(loss - untied), KEYPOINT_TIE_WEIGHT * ties, rtol=1e-4)


def test_the_open_loop_tie_holds_the_rollout_to_the_frame_it_reached(maze_dataset):
    """Against a direct loop: RSSM.rollout (the planner's) for d steps from every OPEN_LOOP_START_STRIDE-th filtered
    state t, its points against the encoder's points in frame t + d."""
    torch.manual_seed(0)
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", keypoints=2))
    windows = maze_dataset.sample_windows(np.random.default_rng(1), 2, 12)
    with torch.no_grad():
        window = model.filter_window(torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"]))
        torch.manual_seed(7)
        got = float(model.open_loop_terms(window, torch.ones(2, 12, 1, 64, 64))["open_loop_keypoint_tie"])
        steps, rolled = direct_open_loop(model, window, 7)
        errors = [((model.decoder.keypoints(latent) - window.points[:, t + steps]) ** 2).sum((1, 2))
                  for t, latent in rolled]
    assert steps >= 2 and got > 0  # seed 7 draws a horizon of several steps
    np.testing.assert_allclose(got, float(torch.cat(errors).mean()), rtol=1e-4)
