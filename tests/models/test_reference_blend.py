"""Drawing predictions on the last observed frame (RSSMConfig.reference_blend, networks.ReferenceBlend)."""
import numpy as np
import pytest
import torch

from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.evaluate import evaluate, predict_with_runtime
from hvp.models.fit import fit
from hvp.models.metrics import psnr
from hvp.models.networks import ReferenceBlend, to_uint8_images
from hvp.models.runtime import TorchRuntime, load_runtime
from hvp.playground import predict
from open_loop_check import direct_open_loop


@pytest.fixture(scope="module")
def blend_run(maze_dataset, tmp_path_factory):
    """A debug RSSM trained briefly with the blend, from a fixed seed."""
    out = tmp_path_factory.mktemp("runs") / "blend"
    fit(maze_dataset, out, preset="debug", train_overrides={"steps": 60, "learning_rate": 5e-3},
        model_overrides={"reference_blend": True}, threads=2, progress=False)
    return out


def test_the_blend_mixes_each_pixel_of_the_drawing_and_the_reference():
    torch.manual_seed(0)
    blend = ReferenceBlend()
    drawn, reference = torch.rand(2, 3, 8, 8) - 0.5, torch.rand(2, 3, 8, 8) - 0.5
    reference[:, :, :4] = drawn[:, :, :4]
    out = blend(drawn, reference)
    torch.testing.assert_close(out[:, :, :4], reference[:, :, :4])  # where they agree, either
    share = (out - reference) / (drawn - reference)  # the drawing's share of each pixel, the same for its 3 channels
    assert ((share[:, :, 4:] > 0) & (share[:, :, 4:] < 1)).all()
    torch.testing.assert_close(share[:, :1, 4:].expand(-1, 3, -1, -1), share[:, :, 4:], atol=1e-3, rtol=1e-3)
    with torch.no_grad():
        blend.mask[-1].bias.fill_(50.0)
    torch.testing.assert_close(blend(drawn, reference), drawn)
    with torch.no_grad():
        blend.mask[-1].bias.fill_(-50.0)
    torch.testing.assert_close(blend(drawn, reference), reference)


def test_the_blend_loss_draws_open_loop_predictions_on_the_frame_they_started_from(maze_dataset):
    """Against a direct loop: RSSM.rollout (the planner's) from every OPEN_LOOP_START_STRIDE-th filtered state t for d
    steps, decoded on frame t, weighted squared error against frame t + d."""
    torch.manual_seed(0)
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", reference_blend=True))
    windows = maze_dataset.sample_windows(np.random.default_rng(1), 2, 12)
    images, actions = torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"])
    with torch.no_grad():
        window = model.filter_window(images, actions)
        weights = torch.rand(2, 12, 1, *model.config.image_size) + 1
        torch.manual_seed(7)
        got = float(model.open_loop_terms(window, weights)["blend_reconstruction"])
        steps, rolled = direct_open_loop(model, window, 7)
        errors = [((model.decode(latent, window.frames[:, t]) - window.frames[:, t + steps]) ** 2
                   * weights[:, t + steps]).sum((1, 2, 3)) for t, latent in rolled]
    assert len(errors) >= 1
    np.testing.assert_allclose(got, float(torch.cat(errors).mean()), rtol=1e-4)
    assert got > 1.0  # real images, not zeros


def test_the_blend_adds_its_term_to_the_loss_and_trains_the_decoder_and_the_transition(maze_dataset):
    torch.manual_seed(0)
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 8)
    images, actions = torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"])
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", reference_blend=True))
    plain = model.__class__(model.config.replace(reference_blend=False))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("blend.")})
    torch.manual_seed(1)
    loss, metrics = model(images, actions)
    torch.manual_seed(1)
    plain_loss, plain_metrics = plain(images, actions)
    assert "blend_reconstruction" in metrics and "blend_reconstruction" not in plain_metrics
    np.testing.assert_allclose(float(loss), float(plain_loss) + float(metrics["blend_reconstruction"]), rtol=1e-4)
    model.zero_grad()
    terms = model.open_loop_terms(model.filter_window(images, actions), torch.ones(2, 8, 1, 64, 64))
    terms["blend_reconstruction"].backward()
    for part in (model.blend, model.decoder, model.cell):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_a_trained_blend_draws_sharper_predictions_than_the_latents_alone(blend_run, maze_dataset):
    runtime = load_runtime(blend_run, device="cpu", threads=2)
    assert runtime.draws_on_reference
    batch = maze_dataset.sample_windows(np.random.default_rng(3), 4, 10)
    truth = batch["image"][:, 4:]
    on_reference = predict_with_runtime(runtime, batch["image"], batch["action"], 4)
    latent_only = predict_with_runtime(runtime, batch["image"], batch["action"], 4, on_reference=False)
    # 60 debug updates barely draw the maze; the blend keeps the last frame's walls
    assert psnr(on_reference, truth).mean() > psnr(latent_only, truth).mean() + 2.0  # measured: +2.8 dB
    # the runtime path is the model's own open-loop prediction, drawn on the last context frame
    direct = runtime.model.predict_video(torch.from_numpy(batch["image"]), torch.from_numpy(batch["action"]), 4)
    assert np.abs(on_reference.astype(int) - to_uint8_images(direct).numpy().astype(int)).max() <= 1
    summary, frames = evaluate(runtime, maze_dataset, context=4, horizon=6, windows=4)
    assert set(summary["methods"]) == {"rssm", "rssm_latent_only", "copy_last"}
    assert summary["methods"]["rssm"]["psnr"][0] > summary["methods"]["rssm_latent_only"]["psnr"][0]


def test_the_blend_survives_a_checkpoint_round_trip(blend_run):
    _, model, config = checkpoint.load_model(blend_run)
    assert config["model"]["reference_blend"] is True
    again = checkpoint.load_model(blend_run)[1]
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    assert any(name.startswith("blend.") for name in model.state_dict())


def test_playground_predict_draws_on_a_reference_and_refuses_one_a_model_cannot_use(blend_run, rssm_run,
                                                                                    maze_dataset):
    runtime = load_runtime(blend_run, device="cpu", threads=1)
    image = maze_dataset.episodes[0]["image"][0]
    state = runtime.observe(runtime.initial_state(1), image[None], np.zeros((1, 2), np.float32))
    actions = np.zeros((3, 5, 2), np.float32)
    drawn = predict(runtime, state, actions, reference=image)
    assert drawn["images"].shape == (3, 5, 64, 64, 3)
    expected = runtime.decode(drawn["latents"], np.broadcast_to(image, (3, 5, 64, 64, 3)).copy())
    np.testing.assert_array_equal(drawn["images"], expected)
    assert not np.array_equal(drawn["images"], predict(runtime, state, actions)["images"])
    with pytest.raises(ValueError, match="reference: expected shape"):
        predict(runtime, state, actions, reference=image[:32])
    plain = load_runtime(rssm_run, device="cpu", threads=1)
    assert not plain.draws_on_reference
    with pytest.raises(ValueError, match="does not draw on a reference"):
        predict(plain, plain.initial_state(1), actions, reference=image)
    with pytest.raises(ValueError, match="without reference_blend"):
        plain.decode(np.zeros((1, plain.latent_dim), np.float32), image[None])


def test_the_runtime_names_a_reference_of_the_wrong_shape_or_dtype(blend_run):
    runtime = TorchRuntime(checkpoint.load_model(blend_run)[1], device="cpu", threads=1)
    latents = np.zeros((2, 3, runtime.latent_dim), np.float32)
    with pytest.raises(ValueError, match=r"reference: expected shape \(2, 3, 64, 64, 3\)"):
        runtime.decode(latents, np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(TypeError, match="reference: expected dtype uint8"):
        runtime.decode(latents, np.zeros((2, 3, 64, 64, 3), np.float32))
    assert runtime.decode(latents, np.zeros((2, 3, 64, 64, 3), np.uint8)).shape == (2, 3, 64, 64, 3)


def test_hvp_train_reference_blend_reaches_the_saved_config(maze_file, tmp_path):
    from hvp.cli import main

    out = tmp_path / "cli"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--steps", "2",
                 "--reference-blend", "--threads", "1", "--no-progress"]) == 0
    assert checkpoint.load_model(out)[2]["model"]["reference_blend"] is True
