"""State-supervised imagination: the readout's error on filtered and open-loop latents, added to the ELBO."""
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvp.cli import main
from hvp.data import save_trajectories
from hvp.models import checkpoint
from hvp.models.config import RSSMConfig
from hvp.models.readout import ReadoutConfig, ReadoutNet, train_readout
from hvp.models.state_supervision import StateSupervised


def supervised_model(horizon=3, dims=0, weight=10.0):
    torch.manual_seed(0)
    rssm = checkpoint.build_model("rssm", RSSMConfig.preset("debug", free_nats=0.0))
    readout = ReadoutNet(ReadoutConfig.preset("debug", latent_dim=rssm.config.latent_dim, state_dim=2))
    return StateSupervised(rssm, readout, weight=weight, horizon=horizon, state_dims=dims)


def window(maze_dataset, length=6):
    windows = maze_dataset.sample_windows(np.random.default_rng(1), 2, length)
    return (torch.from_numpy(windows["image"]), torch.from_numpy(windows["action"]),
            torch.from_numpy(windows["true_state"]))


def test_state_loss_is_the_readout_error_over_filtered_latents_and_their_prior_rollouts(maze_dataset):
    """Against a direct loop: the filtered latents [h, posterior mean] at every frame, and RSSM.rollout (the
    planner's prior-mean rollout) from each for d = 1..3 steps, each read out against its frame's true state."""
    trainee = supervised_model(horizon=3)
    images, actions, states = window(maze_dataset)
    with torch.no_grad():
        torch.manual_seed(5)
        loss, metrics = trainee(images, actions, states)
        torch.manual_seed(5)
        filtered = trainee.rssm.filter_window(images, actions)
        torch.manual_seed(5)
        elbo, _ = trainee.rssm(images, actions)

        def error(latents, truth):
            return F.smooth_l1_loss(trainee.readout(latents), truth.float(), beta=0.05)

        terms = [error(torch.cat([filtered.deters, filtered.post_mean], -1).flatten(0, 1), states.flatten(0, 1))]
        for step in range(1, 4):
            rolled = torch.cat([trainee.rssm.rollout(filtered.deters[:, t], filtered.post_mean[:, t],
                                                     filtered.prev[:, t + 1:t + 1 + step])[:, -1]
                                for t in range(6 - step)])
            terms.append(error(rolled, torch.cat([states[:, t + step] for t in range(6 - step)])))
    expected = float(sum(terms)) / 4
    np.testing.assert_allclose(float(metrics["state_loss"]), expected, rtol=1e-5)
    assert expected > 1e-3  # an untrained readout: real errors, not zeros
    np.testing.assert_allclose(float(loss), float(elbo) + 10.0 * expected, rtol=1e-5)


def test_state_loss_trains_the_transition_and_the_readout_and_reads_only_the_leading_dims(maze_dataset):
    images, actions, states = window(maze_dataset)
    trainee = supervised_model(dims=1)
    trainee.rssm.elbo = lambda filtered: (torch.zeros(()), {})  # the state loss alone
    torch.manual_seed(5)
    loss, metrics = trainee(images, actions, states)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainee.rssm.cell.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainee.readout.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in trainee.rssm.decoder.parameters())
    # only the first state dimension is supervised: the second can be anything
    torch.manual_seed(5)
    _, shifted = trainee(images, actions, states + torch.tensor([0.0, 100.0]))
    np.testing.assert_allclose(float(shifted["state_loss"]), float(metrics["state_loss"]), rtol=1e-6)
    with pytest.raises(ValueError, match="expected weight > 0"):
        StateSupervised(trainee.rssm, trainee.readout, weight=0.0, horizon=3)


def test_cli_finetune_with_state_loss_trains_beside_the_readout_and_names_what_is_missing(
        rssm_run, maze_dataset, maze_file, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(rssm_run, run)
    args = ["finetune", str(run), "--data", maze_file, "--preset", "debug", "--threads", "1", "--state-loss", "100",
            "--state-horizon", "2"]
    with pytest.raises(SystemExit, match="has no readout/; make one with `hvp train-readout"):
        main([*args, "--out", str(tmp_path / "none")])
    train_readout(run, maze_dataset, preset="debug", train_overrides={"steps": 20}, progress=False)
    readout_before = (run / "readout" / "model.safetensors").read_bytes()
    assert main([*args, "--out", str(tmp_path / "ft")]) == 0
    summary = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert summary["state_loss"] == {"weight": 100.0, "horizon": 2, "dims": 0}
    assert "state_loss" in (tmp_path / "ft" / "metrics.csv").read_text().splitlines()[0]
    assert not (tmp_path / "ft" / "readout").exists()  # refit on the new latents, not saved half-trained
    assert (run / "readout" / "model.safetensors").read_bytes() == readout_before
    stateless = tmp_path / "stateless.hdf5"
    save_trajectories([{**e, "true_state": np.full((len(e["image"]), 1), np.nan, np.float32)}
                       for e in maze_dataset.episodes], stateless, maze_dataset.env_args)
    with pytest.raises(SystemExit, match=r"data: state_loss needs the 2-dim true_state the readout reads"):
        main([*args[:3], str(stateless), *args[4:], "--out", str(tmp_path / "bad")])
