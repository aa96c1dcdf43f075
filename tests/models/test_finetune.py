"""Fine-tuning a debug run on domain-shifted maze episodes: frozen dynamics, early stopping, sim mixing, export."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from hvp.cli import main
from hvp.data import TrajectoryDataset, save_trajectories
from hvp.models.checkpoint import load_model
from hvp.models.finetune import DYNAMICS_MODULES, FinetuneConfig, finetune
from hvp.models.rssm import STATE_STEP_MODULES


@pytest.fixture(scope="module")
def shifted_dataset() -> TrajectoryDataset:
    """'Real' episodes: maze-easy under the strong shift, true_state unknown as on a robot (NaN [T+1, 1])."""
    from hvp.sim.randomization import SHIFTS
    from hvp.simulate import simulate

    episodes = simulate("maze-easy", "explore", 5, seed=100, progress=False,
                        env_kwargs={"max_steps": 20, "randomization": SHIFTS["strong"]})
    for episode in episodes:
        episode["true_state"] = np.full((len(episode["image"]), 1), np.nan, np.float32)
    return TrajectoryDataset(episodes, {"env_name": "sim:maze-easy", "robot": {"shift": "strong"}})


def _weights(run_dir):
    return load_file(f"{run_dir}/model.safetensors")


def test_encoder_decoder_mode_changes_only_the_observation_model(rssm_run, shifted_dataset, maze_dataset, tmp_path):
    config = FinetuneConfig.preset("debug", mode="encoder-decoder", steps=8, learning_rate=3e-3, patience=10,
                                   sim_fraction=0.5)
    summary = finetune(rssm_run, shifted_dataset, tmp_path / "ft", config, sim=maze_dataset, threads=1)
    assert summary["frozen"] == list(DYNAMICS_MODULES) and summary["sim_episodes"] == len(maze_dataset)
    assert summary["real_episodes"] == {"train": 4, "held_out": 1}
    assert summary["best_step"] > 0 and summary["held_out_loss"]["best"] < summary["held_out_loss"]["before"]
    before, after = _weights(rssm_run), _weights(tmp_path / "ft")
    assert any(not np.array_equal(before[n], after[n]) for n in before if n.startswith("encoder"))
    assert all(np.array_equal(before[n], after[n]) for n in before if n.startswith(DYNAMICS_MODULES))
    _, model, config_json = load_model(tmp_path / "ft")
    assert config_json["env_args"]["finetuned_from"] == rssm_run and config_json["env_args"]["robot"]["shift"] == "strong"
    # the frozen prior cannot move: the whole KL trained the posterior, and the saved run keeps its own balance
    assert summary["kl_balance"] == 0.0 and model.config.kl_balance == load_model(rssm_run)[1].config.kl_balance


def test_early_stopping_keeps_the_best_weights_when_held_out_loss_worsens(rssm_run, shifted_dataset, tmp_path):
    # a learning rate this large wrecks the model: every slice is worse than the start, so the start is kept
    config = FinetuneConfig.preset("debug", steps=40, eval_every=1, patience=2, learning_rate=0.5, grad_clip=1e6)
    summary = finetune(rssm_run, shifted_dataset, tmp_path / "ft", config, threads=1)
    assert summary["stopped_early"] and summary["steps_run"] == 2 and summary["best_step"] == 0
    assert [h["step"] for h in summary["history"]] == [0, 1, 2]
    before, after = _weights(rssm_run), _weights(tmp_path / "ft")
    assert all(np.array_equal(before[n], after[n]) for n in before)
    # keep "last": the same run goes on to all its steps and saves where it ended
    last = finetune(rssm_run, shifted_dataset, tmp_path / "last", config.replace(steps=4, keep="last"), threads=1)
    assert not last["stopped_early"] and last["steps_run"] == 4 and last["best_step"] == 4
    assert not all(np.array_equal(before[n], v) for n, v in _weights(tmp_path / "last").items())
    with pytest.raises(ValueError, match="keep must be one of"):
        FinetuneConfig(keep="first")


def test_cli_full_finetune_exports_onnx_and_refuses_bad_inputs(rssm_run, shifted_dataset, tmp_path):
    real = tmp_path / "real.hdf5"
    save_trajectories(shifted_dataset.episodes, real, shifted_dataset.env_args)
    with pytest.raises(SystemExit, match="--sim-data"):
        main(["finetune", rssm_run, "--data", str(real), "--out", str(tmp_path / "x"), "--sim-fraction", "0.5"])
    assert main(["finetune", rssm_run, "--data", str(real), "--out", str(tmp_path / "ft"), "--preset", "debug",
                 "--threads", "1", "--export", "--kl-balance", "0.5", "--overshooting", "3",
                 "--foreground-reference", "batch"]) == 0
    manifest = json.loads((tmp_path / "ft" / "onnx" / "manifest.json").read_text())
    assert "rssm" in manifest["models"]
    summary = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert summary["config"]["mode"] == "full" and summary["kl_balance"] == 0.5 and summary["overshooting"] == 3
    assert "overshooting_kl" in (tmp_path / "ft" / "metrics.csv").read_text().splitlines()[0]
    # loss-only settings: the saved model keeps the run's own
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())["model"]
    assert saved["overshooting"] == 0 and saved["foreground_reference"] == "window"
    assert summary["config"]["foreground_reference"] == "batch"
    with pytest.raises(SystemExit, match="already holds a model"):
        main(["finetune", rssm_run, "--data", str(real), "--out", str(tmp_path / "ft"), "--preset", "debug"])
    small = tmp_path / "small.hdf5"
    save_trajectories([{**e, "image": e["image"][:, :32, :32], "goal_image": e["goal_image"][:32, :32]}
                       for e in shifted_dataset.episodes], small, {})
    with pytest.raises(SystemExit, match=r"data: images \(32, 32\)"):
        main(["finetune", rssm_run, "--data", str(small), "--out", str(tmp_path / "bad"), "--preset", "debug"])


def test_a_model_with_a_robot_state_fine_tunes_on_the_recorded_state_and_freezes_its_step(maze_dataset,
                                                                                         shifted_dataset, tmp_path):
    from hvp.models.fit import fit

    fit(maze_dataset, tmp_path / "robot", preset="debug", train_overrides={"steps": 4},
        model_overrides={"proprio_weight": 10.0}, threads=1, progress=False)
    config = FinetuneConfig.preset("debug", mode="encoder-decoder", steps=4, patience=10)
    summary = finetune(tmp_path / "robot", shifted_dataset, tmp_path / "ft", config, threads=1)
    assert summary["frozen"] == [*DYNAMICS_MODULES, "robot_step", "robot_correction"]  # no point_step: no points
    before, after = _weights(tmp_path / "robot"), _weights(tmp_path / "ft")
    assert all(np.array_equal(before[n], after[n]) for n in before if n.startswith(STATE_STEP_MODULES))
    assert any(not np.array_equal(before[n], after[n]) for n in before if n.startswith("encoder"))
    with pytest.raises(ValueError, match="state_loss"):
        finetune(tmp_path / "robot", shifted_dataset, tmp_path / "ft2", config.replace(state_loss=1.0), threads=1)
    narrower = TrajectoryDataset([{**e, "state": e["state"][:, :2]} for e in shifted_dataset.episodes],
                                 shifted_dataset.env_args)
    with pytest.raises(ValueError, match="robot state has 4 dims, the data's state 2"):
        finetune(tmp_path / "robot", narrower, tmp_path / "ft3", config, threads=1)


def test_points_found_on_the_foreground_take_the_robots_empty_scene(maze_dataset, shifted_dataset, tmp_path):
    import torch

    from hvp.models.fit import background_frames, fit

    fit(maze_dataset, tmp_path / "points", preset="debug", train_overrides={"steps": 2},
        model_overrides={"keypoints": 2, "points_on_foreground": True}, threads=1, progress=False)
    config = FinetuneConfig.preset("debug", steps=2)
    finetune(tmp_path / "points", shifted_dataset, tmp_path / "ft", config, threads=1)
    train_set, _ = shifted_dataset.split(config.held_out, config.seed)
    robot_scene = background_frames(train_set, config.seed, config.seq_len, torch.device("cpu")).median(dim=0).values
    sim_scene = load_model(tmp_path / "points")[1].encoder.point_background
    tuned_scene = load_model(tmp_path / "ft")[1].encoder.point_background
    torch.testing.assert_close(tuned_scene, robot_scene)
    assert (tuned_scene - sim_scene).abs().max() > 0.1  # the strong shift recolours the scene
