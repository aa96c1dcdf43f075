import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from hvp.cli import main
from hvp.config import ConfigError
from hvp.models import checkpoint
from hvp.models.config import PixelConfig, RSSMConfig, TrainConfig
from hvp.models.fit import background_frames, cosine_learning_rate, fit
from hvp.models.train import optimizer_groups, train


@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_a_debug_rssm_overfits_a_tiny_batch(maze_dataset, latent):
    torch.manual_seed(0)
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 5)
    batch = {"image": torch.from_numpy(windows["image"]), "action": torch.from_numpy(windows["action"])}
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", free_nats=0.0, latent=latent, classes=2))
    first = float(model(batch["image"], batch["action"])[1]["reconstruction"])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    last = train(model, optimizer, lambda: batch, start_step=0, steps=80, grad_clip=100.0, log_every=10,
                 progress=False)
    assert last["reconstruction"] < first / 8, (first, last)


def test_the_pixel_baseline_starts_at_copy_last_and_learns_to_move_the_ball(maze_dataset):
    torch.manual_seed(0)
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 5)
    batch = {"image": torch.from_numpy(windows["image"]), "action": torch.from_numpy(windows["action"])}
    model = checkpoint.build_model("pixel", PixelConfig.preset("debug"))
    predicted = model.predict_video(batch["image"], batch["action"], context=2)
    last_frame = predicted.new_tensor(windows["image"][:, 1:2]).movedim(-1, -3) / 255.0 - 0.5
    torch.testing.assert_close(predicted, last_frame.expand_as(predicted))  # a zero residual: copy-last exactly
    copy_last = float(model(batch["image"], batch["action"])[1]["reconstruction"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    last = train(model, optimizer, lambda: batch, start_step=0, steps=80, grad_clip=100.0, log_every=10,
                 progress=False)
    # the masked compositing this replaced never left copy-last (its gradient vanished); this must
    assert last["reconstruction"] < copy_last / 3, (copy_last, last)


class TwoParts(torch.nn.Module):
    """A loss whose second part's gradient is ten thousand times the first's."""

    def __init__(self) -> None:
        super().__init__()
        self.small, self.large = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.small(inputs).square().mean() + 1e4 * self.large(inputs).square().mean()
        return loss, {"loss": loss.detach()}


def test_each_optimizer_group_is_clipped_on_its_own():
    torch.manual_seed(0)
    model, inputs = TwoParts(), torch.randn(8, 3)
    model.small.bias.requires_grad_(False)
    groups = optimizer_groups(model, ("large", "absent"))
    assert [group["params"] for group in groups] == [[model.small.weight], list(model.large.parameters())]
    model(inputs)[0].backward()
    small_gradient = model.small.weight.grad.clone()
    clip = 2 * float(small_gradient.norm())  # above the small part's norm, far under the large part's
    assert float(torch.cat([p.grad.flatten() for p in model.large.parameters()]).norm()) > 100 * clip
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train(model, torch.optim.SGD(groups, lr=1.0), lambda: {"x": inputs}, start_step=0, steps=1, grad_clip=clip,
          log_every=1, progress=False, inputs=("x",))
    # under one shared clip the small part's step would shrink by over a hundred times; on its own it is whole
    torch.testing.assert_close(before["small.weight"] - model.small.weight.detach(), small_gradient)
    large_step = torch.cat([(before[f"large.{n}"] - p.detach()).flatten() for n, p in model.large.named_parameters()])
    assert float(large_step.norm()) == pytest.approx(clip, rel=1e-5)
    assert torch.equal(model.small.bias.detach(), before["small.bias"])


def test_resuming_gives_the_same_weights_as_an_uninterrupted_run(maze_dataset, tmp_path):
    settings = dict(preset="debug", threads=1, progress=False)
    straight = fit(maze_dataset, tmp_path / "straight", train_overrides={"steps": 6, "save_every": 3}, **settings)
    fit(maze_dataset, tmp_path / "split", train_overrides={"steps": 3}, **settings)
    with pytest.raises(FileExistsError, match="--resume"):
        fit(maze_dataset, tmp_path / "split", train_overrides={"steps": 6}, **settings)
    resumed = fit(maze_dataset, tmp_path / "split", train_overrides={"steps": 6}, resume=True, **settings)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    rows = (tmp_path / "split" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and [r.split(",")[0] for r in rows[1:]] == ["3", "5", "6"]  # log_every 5, plus the last step


def test_a_moving_average_of_the_weights_is_saved_and_resumes_exactly(maze_dataset, tmp_path):
    settings = dict(preset="debug", threads=1, progress=False)
    first = fit(maze_dataset, tmp_path / "one", train_overrides={"steps": 1, "ema_decay": 0.75}, **settings)
    second = fit(maze_dataset, tmp_path / "two", train_overrides={"steps": 2, "ema_decay": 0.75}, **settings)
    trained = load_file(tmp_path / "two" / checkpoint.TRAIN_STATE_FILE)
    _, saved, _ = checkpoint.load_model(tmp_path / "two")
    for name, value in second.state_dict().items():
        assert torch.equal(saved.state_dict()[name], value), name
        if value.is_floating_point():  # the first update's weights, then 0.75 of them and 0.25 of the second's
            raw = trained[checkpoint.TRAINING_WEIGHTS_PREFIX + name]
            torch.testing.assert_close(value, 0.75 * first.state_dict()[name] + 0.25 * raw)
    changed = [n for n, v in second.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, trained[checkpoint.TRAINING_WEIGHTS_PREFIX + n])]
    assert changed, "the average equals the trained weights"
    # stopped at 3 of 6 updates and resumed: the same average and the same trained weights as a straight run
    straight = fit(maze_dataset, tmp_path / "straight", train_overrides={"steps": 6, "ema_decay": 0.75}, **settings)
    fit(maze_dataset, tmp_path / "split", train_overrides={"steps": 3, "ema_decay": 0.75}, **settings)
    resumed = fit(maze_dataset, tmp_path / "split", train_overrides={"steps": 6, "ema_decay": 0.75}, resume=True,
                  **settings)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert load_file(tmp_path / "split" / checkpoint.TRAIN_STATE_FILE).keys() == \
        load_file(tmp_path / "straight" / checkpoint.TRAIN_STATE_FILE).keys()
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig.preset("debug", ema_decay=1.0)


def test_the_learning_rate_decays_from_its_start_to_its_floor(maze_dataset, tmp_path):
    config = TrainConfig.preset("cpu", steps=5)
    rates = [cosine_learning_rate(config, step) for step in range(1, 6)]
    assert rates[0] == pytest.approx(config.learning_rate)
    assert rates[-1] == pytest.approx(config.learning_rate * config.final_lr_fraction) and config.final_lr_fraction < 1
    assert all(a > b for a, b in zip(rates, rates[1:]))
    fit(maze_dataset, tmp_path / "run", preset="debug", train_overrides={"steps": 4, "final_lr_fraction": 0.1},
        threads=1, progress=False)
    saved = json.loads((tmp_path / "run" / checkpoint.TRAIN_STEP_FILE).read_text())
    assert saved["param_groups"][0]["lr"] == pytest.approx(1e-4)  # debug's 1e-3, the last update at the floor


def _ddp_worker(rank: int, port: int, data_path: str, out: str) -> None:
    from hvp.data import load_dataset

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    model = fit(load_dataset(data_path), os.path.join(out, "run"), preset="debug", device="cpu",
                train_overrides={"steps": 3}, progress=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_gloo_processes_end_with_identical_weights(maze_file, tmp_path):
    mp.spawn(_ddp_worker, args=(_free_port(), maze_file, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    torch.manual_seed(0)  # the seed fit() initializes with: weights must have moved away from it
    initial = checkpoint.build_model("rssm", checkpoint.load_model(tmp_path / "run")[1].config).state_dict()
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert any(not torch.equal(rank0[k], initial[k]) for k in rank0)


def test_hvp_train_cli_writes_a_loadable_run(maze_file, tmp_path):
    out = tmp_path / "cli"
    assert main(["train", "--data", maze_file, "--out", str(out), "--preset", "debug", "--model", "pixel",
                 "--steps", "2", "--lr", "2e-3", "--final-lr-fraction", "0.5", "--foreground-weight", "3",
                 "--ema-decay", "0.9", "--threads", "1", "--no-progress"]) == 0
    kind, model, config = checkpoint.load_model(out)
    assert kind == "pixel" and config["train"]["steps"] == 2
    assert (config["train"]["learning_rate"], config["train"]["final_lr_fraction"]) == (2e-3, 0.5)
    assert config["train"]["ema_decay"] == 0.9
    assert config["model"]["foreground_weight"] == 3
    assert (out / "metrics.csv").is_file() and list((out / "previews").glob("*.png"))
    for rssm_only in (["--foreground-reference", "batch"], ["--learned-background"]):  # the pixel model has none
        with pytest.raises(ConfigError, match=rssm_only[0][2:].replace("-", "_")):
            main(["train", "--data", maze_file, "--out", str(tmp_path / "bad"), "--preset", "debug", "--model",
                  "pixel", *rssm_only, "--no-progress"])


def test_a_learned_background_starts_at_the_datas_median_and_trains(maze_dataset, tmp_path):
    model = fit(maze_dataset, tmp_path / "run", preset="debug", train_overrides={"steps": 2},
                model_overrides={"learned_background": True}, threads=1, progress=False)
    preset = TrainConfig.preset("debug")
    frames = background_frames(maze_dataset, preset.seed, preset.seq_len, torch.device("cpu"))
    median = frames.median(dim=0).values
    assert median.std() > 0.1  # the arena, its walls and the outside: not a flat image
    moved = (model.decoder.background.detach() - median).abs()
    assert 0 < moved.max() <= 2.05e-3  # two Adam updates of at most the learning rate (1e-3) each
    _, loaded, config = checkpoint.load_model(tmp_path / "run")
    assert config["model"]["learned_background"] is True
    assert torch.equal(loaded.decoder.background, model.decoder.background)


def test_overshooting_kl_is_the_mean_kl_of_prior_rollouts_from_every_filtered_state(maze_dataset):
    """Against a direct loop: RSSM.rollout (the planner's prior-mean rollout) from (h_t, posterior mean z_t) for
    d = 1..D steps, KL of the posterior at t + d to the prior there, mean over every (t, d) in the window."""
    torch.manual_seed(0)
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", overshooting=3, free_nats=0.0))
    windows = maze_dataset.sample_windows(np.random.default_rng(1), 2, 6)
    with torch.no_grad():
        deters, means, params, prev = overshooting_inputs(model, torch.from_numpy(windows["image"]),
                                                          torch.from_numpy(windows["action"]))
        expected = []
        for t in range(5):
            for step in range(1, min(3, 5 - t) + 1):
                latent = model.rollout(deters[:, t], means[:, t], prev[:, t + 1:t + 1 + step])[:, -1]
                prior = model.prior(latent[:, :model.config.deter_dim])
                expected.append(gaussian_kl(*model._gaussian(params[:, t + step]), *model._gaussian(prior)))
        got = model.overshooting_kl(deters, means, params, prev)
    assert len(expected) == 12  # starts 0-4 with 3 / 3 / 3 / 2 / 1 steps
    np.testing.assert_allclose(float(got), float(torch.cat(expected).mean()), rtol=1e-5)
    assert float(got) > 0.01  # real KLs, not a comparison of zeros


def gaussian_kl(mean_a: torch.Tensor, std_a: torch.Tensor, mean_b: torch.Tensor, std_b: torch.Tensor) -> torch.Tensor:
    """KL(N(a) || N(b)) of diagonal Gaussians [..., Z], summed over Z, written out (the model's is torch's)."""
    kl = torch.log(std_b / std_a) + (std_a ** 2 + (mean_a - mean_b) ** 2) / (2 * std_b ** 2) - 0.5
    return kl.sum(-1)


def model_images(images: torch.Tensor) -> torch.Tensor:
    from hvp.models.networks import to_float_images

    return to_float_images(images)


def test_overshooting_adds_its_term_to_the_loss_and_trains_the_transition(maze_dataset):
    torch.manual_seed(0)
    windows = maze_dataset.sample_windows(np.random.default_rng(0), 2, 8)
    images, actions = torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"])
    model = checkpoint.build_model("rssm", RSSMConfig.preset("debug", overshooting=4, overshooting_scale=2.0,
                                                           free_nats=0.0))  # no clamp: gradients everywhere
    torch.manual_seed(1)
    loss, metrics = model(images, actions)
    torch.manual_seed(1)
    plain = model.__class__(model.config.replace(overshooting=0))
    plain.load_state_dict(model.state_dict())
    plain_loss, plain_metrics = plain(images, actions)
    assert "overshooting_kl" in metrics and "overshooting_kl" not in plain_metrics
    np.testing.assert_allclose(float(loss), float(plain_loss) + 2.0 * float(metrics["overshooting_kl"]), rtol=1e-4)
    model.zero_grad()
    model.overshooting_kl(*overshooting_inputs(model, images, actions)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.cell.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.decoder.parameters())


def overshooting_inputs(model, images, actions):
    """(deters, posterior means, posterior parameters, previous actions) of one filtering pass, for overshooting_kl."""
    from hvp.models.rssm import previous_actions

    embeds, prev = model.embed(model_images(images)), previous_actions(actions)
    deter, stoch = model.initial(images.shape[0])
    deters, means, params = [], [], []
    for t in range(images.shape[1]):
        deter = model.transition(deter, stoch, prev[:, t])
        params.append(model.posterior(deter, embeds[:, t]))
        stoch = model.mean(params[-1])
        deters.append(deter), means.append(stoch)
    return torch.stack(deters, 1), torch.stack(means, 1), torch.stack(params, 1), prev
