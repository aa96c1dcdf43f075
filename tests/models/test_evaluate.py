import json

import numpy as np
import pytest

from hvp.cli import main
from hvp.models.metrics import linear_probe_r2, object_centroids, position_error, psnr, ssim, tracked_color


def _ball_image(row: int, col: int, size: int = 32) -> np.ndarray:
    image = np.full((size, size, 3), 200, np.uint8)
    image[row - 2:row + 3, col - 2:col + 3] = (230, 40, 30)
    return image


def test_psnr_and_ssim_rank_a_closer_image_higher():
    truth = _ball_image(10, 10)
    near, far = _ball_image(10, 11), _ball_image(25, 25)
    assert psnr(near, truth) > psnr(far, truth)
    assert ssim(truth[None], truth[None])[0] == pytest.approx(1.0, abs=1e-6)
    assert ssim(near[None], truth[None])[0] > ssim(far[None], truth[None])[0]


def test_object_centroid_and_position_error_are_in_pixels():
    centroid, found = object_centroids(np.stack([_ball_image(10, 12), _ball_image(20, 5)]), "red")
    np.testing.assert_allclose(centroid, [[10, 12], [20, 5]])
    assert found.all()
    empty = np.full((32, 32, 3), 200, np.uint8)
    error, missing = position_error(np.stack([_ball_image(13, 16), empty]), np.stack([_ball_image(10, 12)] * 2), "red")
    assert error[0] == pytest.approx(5.0) and not missing[0]
    assert missing[1] and error[1] == pytest.approx(0.5 * np.hypot(32, 32))  # a vanished ball is penalized
    assert tracked_color("maze-hard") == "red" and tracked_color("push-wall") == "green"


def test_the_position_error_is_also_reported_on_moving_and_resting_windows():
    from hvp.models.evaluate import score

    truth = np.stack([[_ball_image(10, 10 + 2 * t) for t in (1, 2, 3)], [_ball_image(20, 20)] * 3])  # [2, 3, ...]
    last_seen = np.stack([_ball_image(10, 10), _ball_image(20, 20)])
    copy_last = np.repeat(last_seen[:, None], 3, axis=1)
    result = score(copy_last, truth, "red", np.array([True, False]))
    np.testing.assert_allclose(result["position_error_px_moved"], [2, 4, 6])
    np.testing.assert_allclose(result["position_error_px_resting"], [0, 0, 0])
    np.testing.assert_allclose(result["position_error_px"], [1, 2, 3])
    assert "position_error_px_moved" not in score(copy_last, truth, "red", np.array([True, True]))


def test_linear_probe_r2_is_one_for_linear_targets_and_low_for_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = x @ rng.normal(size=(6, 2)) + 0.5
    assert linear_probe_r2(x[:200], y[:200], x[200:], y[200:]) == pytest.approx([1.0, 1.0], abs=1e-3)
    noise = rng.normal(size=(400, 2))
    assert (linear_probe_r2(x[:200], noise[:200], x[200:], noise[200:]) < 0.1).all()


def test_eval_model_cli_writes_the_report(rssm_run, maze_file, tmp_path):
    baseline = tmp_path / "pixel"
    main(["train", "--data", maze_file, "--out", str(baseline), "--preset", "debug", "--model", "pixel",
          "--steps", "2", "--threads", "1", "--no-progress"])
    out = tmp_path / "eval"
    assert main(["eval-model", rssm_run, "--data", maze_file, "--baseline", str(baseline), "--context", "3",
                 "--horizon", "4", "--windows", "6", "--out", str(out), "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"rssm", "pixel", "copy_last"}
    for scores in summary["methods"].values():
        assert {len(v) for v in scores.values()} == {4}
    # copy-last drifts further from the truth as the horizon grows on a moving ball
    copy_error = summary["methods"]["copy_last"]["position_error_px"]
    assert copy_error[-1] > copy_error[0]
    assert len(summary["probe"]["r2_per_dim"]) == 2
    assert 0 <= summary["moved_windows"] <= 6
    assert (out / "metrics_per_horizon.png").stat().st_size > 0 and (out / "prediction.gif").stat().st_size > 0


def test_eval_model_refuses_a_pixel_run_as_the_world_model(maze_file, tmp_path):
    from hvp.models.checkpoint import CheckpointError

    main(["train", "--data", maze_file, "--out", str(tmp_path / "p"), "--preset", "debug", "--model", "pixel",
          "--steps", "1", "--threads", "1", "--no-progress"])
    with pytest.raises(CheckpointError, match="needs an 'rssm' run"):
        main(["eval-model", str(tmp_path / "p"), "--data", maze_file])


def test_reconstruction_decodes_the_filtered_belief_of_every_frame(rssm_run, maze_dataset):
    from hvp.models.evaluate import reconstruct_with_runtime
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(rssm_run, threads=1)
    batch = maze_dataset.sample_windows(np.random.default_rng(0), 3, 6)
    images, actions = batch["image"], batch["action"].astype(np.float32)
    frames = reconstruct_with_runtime(runtime, images, actions)
    assert frames.shape == images.shape and frames.dtype == np.uint8
    # frame t is the belief after observing frames 0..t (with the actions between them), decoded
    state = runtime.initial_state(3)
    for t, previous in enumerate([np.zeros_like(actions[:, 0]), actions[:, 0], actions[:, 1]]):
        state = runtime.observe(state, images[:, t], previous)
    np.testing.assert_array_equal(frames[:, 2], runtime.decode(runtime.latent(state)))


def test_prediction_error_scores_uint8_frames_against_the_frames_after_the_context(rssm_run, maze_dataset):
    """Regression guard for the sim-to-real PSNR: scale (uint8, peak 255) and alignment (truth = frames C..C+H-1)."""
    from hvp.data import TrajectoryDataset
    from hvp.models.evaluate import prediction_error
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(rssm_run, threads=1)
    error = prediction_error(runtime, maze_dataset, context=3, horizon=4, windows=6, color="red")
    assert len(error["open_loop_psnr_db_by_horizon"]) == 4
    assert 0 < error["open_loop_psnr_db"] < 60 and 0 < error["reconstruction_psnr_db"] < 60
    assert error["open_loop_ball_error_px"] >= 0
    # copy-last repeats frame C-1: on a dataset whose frames never change it is exact, so truth is not shifted
    still = [{**episode, "image": np.repeat(episode["image"][:1], len(episode["image"]), 0)}
             for episode in maze_dataset.episodes]
    exact = prediction_error(runtime, TrajectoryDataset(still, maze_dataset.env_args), context=3, horizon=4, windows=6)
    assert exact["copy_last_psnr_db"] > 100  # an exact copy: psnr's error floor gives 148 dB
    assert "open_loop_ball_error_px" not in exact


def test_filter_episodes_batches_episodes_of_unequal_length_like_filtering_each_alone(rssm_run, maze_dataset):
    from hvp.contracts import filter_episodes
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(rssm_run, threads=1)
    long, short = maze_dataset.episodes[0], {k: maze_dataset.episodes[1][k][:5] for k in ("image", "action")}
    beliefs, index = filter_episodes(runtime, [short, long])
    assert index.tolist() == [[0, t] for t in range(5)] + [[1, t] for t in range(len(long["image"]))]
    for number, episode in enumerate((short, long)):
        state, previous, rows = runtime.initial_state(1), np.zeros((1, runtime.action_dim), np.float32), []
        for image, action in zip(episode["image"], episode["action"]):
            state = runtime.observe(state, image[None], previous)
            rows.append(runtime.latent(state)[0])
            previous = action[None].astype(np.float32)
        np.testing.assert_allclose(runtime.latent(beliefs)[index[:, 0] == number], np.stack(rows), atol=1e-5)


def test_the_probe_fits_on_the_training_episodes_when_given_and_scores_every_held_out_one(rssm_run, maze_file,
                                                                                         tmp_path):
    out = tmp_path / "eval"
    assert main(["eval-model", rssm_run, "--data", maze_file, "--probe-data", maze_file, "--context", "3",
                 "--horizon", "2", "--windows", "4", "--out", str(out), "--threads", "1"]) == 0
    probe = json.loads((out / "summary.json").read_text())["probe"]
    from hvp.data import load_dataset

    episodes = len(load_dataset(maze_file))
    assert probe["fit_on"] == "fit_dataset" and probe["fit_episodes"] == probe["test_episodes"] == episodes
    # fit and scored on the same frames, a linear map cannot do worse than predicting the mean
    assert min(probe["r2_per_dim"]) > 0
