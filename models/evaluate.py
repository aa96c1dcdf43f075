"""Open-loop evaluation of world models on held-out episodes, and its report files.

From each window of C + H frames a model sees the first C frames (and the actions between
them), then predicts the next H frames from the actions alone. The RSSM is driven through
its ModelRuntime (observe, imagine, decode), exactly as a planner uses it; the pixel
baseline through its own rollout; copy-last-frame repeats frame C-1.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hvp.contracts import filter_episodes, observe_frame
from hvp.data import TrajectoryDataset
from hvp.models.metrics import linear_probe_r2, position_error, psnr, ssim, tracked_color
from hvp.models.networks import to_uint8_images
from hvp.models.runtime import TorchRuntime

PROBE_FIT_EPISODES = 200  # bounds the memory of filtering a whole training set in one batch
# a window's object "moved" when it ends this far (px) from where the last context frame shows it: copy-last's error
# comes only from those windows, so the position error is also reported on them and on the resting rest
MOVED_PX = 0.5


def imagine_with_runtime(runtime: TorchRuntime, images: np.ndarray, actions: np.ndarray, context: int,
                         proprio: np.ndarray | None = None) -> np.ndarray:
    """Filter the first `context` frames, then imagine the rest: images uint8 [B, C+H, h, w, 3], actions float32
    [B, C+H, A] (and the robot's states float32 [B, C+H, S] for a runtime that observes_robot_state) -> latents
    float32 [B, H, D]."""
    batch = images.shape[0]
    state = runtime.initial_state(batch)
    previous = np.zeros((batch, actions.shape[-1]), np.float32)
    for t in range(context):
        state = observe_frame(runtime, state, images[:, t], previous, None if proprio is None else proprio[:, t])
        previous = actions[:, t]
    return runtime.imagine(state, actions[:, context - 1:-1])


def draw_predictions(runtime: TorchRuntime, latents: np.ndarray, last_seen: np.ndarray,
                     on_reference: bool = True) -> np.ndarray:
    """latents float32 [B, H, D] -> frames uint8 [B, H, h, w, 3], drawn on the last frame seen, uint8 [B, h, w, 3],
    when the runtime draws on a reference (a model trained with reference_blend) and `on_reference`."""
    if on_reference and getattr(runtime, "draws_on_reference", False):
        return runtime.decode(latents, np.repeat(last_seen[:, None], latents.shape[1], axis=1))
    return runtime.decode(latents)


def predict_with_runtime(runtime: TorchRuntime, images: np.ndarray, actions: np.ndarray, context: int,
                         on_reference: bool = True, proprio: np.ndarray | None = None) -> np.ndarray:
    """images uint8 [B, C+H, h, w, 3], actions float32 [B, C+H, A] (proprio: as imagine_with_runtime) -> predicted
    frames uint8 [B, H, h, w, 3], drawn on the last context frame when the runtime draws on a reference (a model
    trained with reference_blend) and `on_reference`."""
    latents = imagine_with_runtime(runtime, images, actions, context, proprio)
    return draw_predictions(runtime, latents, images[:, context - 1], on_reference)


def reconstruct_with_runtime(runtime: TorchRuntime, images: np.ndarray, actions: np.ndarray,
                             proprio: np.ndarray | None = None) -> np.ndarray:
    """Teacher-forced: decode the filtered belief after each frame. images uint8 [B, T, h, w, 3], actions float32
    [B, T, A] (proprio: as imagine_with_runtime) -> uint8 [B, T, h, w, 3]. What the training loss scores, unlike
    the open-loop predict_with_runtime."""
    state = runtime.initial_state(images.shape[0])
    previous = np.zeros((images.shape[0], actions.shape[-1]), np.float32)
    frames = []
    for t in range(images.shape[1]):
        state = observe_frame(runtime, state, images[:, t], previous, None if proprio is None else proprio[:, t])
        frames.append(runtime.decode(runtime.latent(state)))
        previous = actions[:, t]
    return np.stack(frames, 1)


def predict_with_model(model: nn.Module, images: np.ndarray, actions: np.ndarray, context: int) -> np.ndarray:
    """Any model with predict_video (the pixel baseline): same shapes as predict_with_runtime."""
    device = next(model.parameters()).device
    predicted = model.predict_video(torch.from_numpy(images).to(device), torch.from_numpy(actions).to(device), context)
    return to_uint8_images(predicted).cpu().numpy()


def score(predicted: np.ndarray, truth: np.ndarray, color: str | None,
          moved: np.ndarray | None = None) -> dict[str, list[float]]:
    """Per-horizon means over windows: predicted, truth uint8 [B, H, h, w, 3] -> {"psnr": [H], "ssim": [H], ...}.
    With `color` and `moved` bool [B] (some windows each way), the position error also over each group of windows."""
    result = {"psnr": psnr(predicted, truth).mean(0).tolist(), "ssim": ssim(predicted, truth).mean(0).tolist()}
    if color is not None:
        error, missing = position_error(predicted, truth, color)
        result["position_error_px"] = np.nanmean(error, axis=0).tolist()
        result["object_missing_fraction"] = missing.mean(0).tolist()
        if moved is not None and moved.any() and not moved.all():
            result["position_error_px_moved"] = np.nanmean(error[moved], axis=0).tolist()
            result["position_error_px_resting"] = np.nanmean(error[~moved], axis=0).tolist()
    return result


def prediction_error(runtime: TorchRuntime, dataset: TrajectoryDataset, *, context: int = 5, horizon: int = 10,
                     windows: int = 64, seed: int = 0, color: str | None = None) -> dict[str, float]:
    """Means over windows and horizon: open-loop PSNR (dB) and, with `color`, the tracked object's position error
    (px); the copy-last-frame PSNR beside it; the teacher-forced reconstruction PSNR of the filtered belief over
    all C + H frames. Open-loop frames decode prior latents, reconstructions posterior ones: a model can learn to
    reconstruct a new domain (its training loss falls) and still predict in the old one."""
    batch = dataset.sample_windows(np.random.default_rng(seed), windows, context + horizon)
    images, actions, proprio = batch["image"], batch["action"].astype(np.float32), batch["state"].astype(np.float32)
    truth = images[:, context:]
    open_loop = score(predict_with_runtime(runtime, images, actions, context, proprio=proprio), truth, color)
    copy_last = score(np.repeat(images[:, context - 1:context], horizon, axis=1), truth, None)
    reconstructed = reconstruct_with_runtime(runtime, images, actions, proprio)
    result = {"open_loop_psnr_db": float(np.mean(open_loop["psnr"])), "copy_last_psnr_db": float(np.mean(copy_last["psnr"])),
              "reconstruction_psnr_db": float(psnr(reconstructed, images).mean()),
              "open_loop_psnr_db_by_horizon": open_loop["psnr"], "context": context, "horizon": horizon,
              "windows": windows}
    if color is not None:
        result["open_loop_ball_error_px"] = float(np.nanmean(open_loop["position_error_px"]))
    return result


def latent_probe(runtime: TorchRuntime, dataset: TrajectoryDataset,
                 fit_dataset: TrajectoryDataset | None = None) -> dict[str, Any]:
    """Linear probe latent -> true_state (filtered beliefs), R^2 on held-out episodes.

    With `fit_dataset` (e.g. the model's training data; its first PROBE_FIT_EPISODES episodes) the probe is fit
    there and scored on every episode of `dataset`; without, fit on the first half of `dataset`'s episodes and
    scored on the rest. A 160-dim latent fit on 15 episodes is poorly determined: the shipped maze-easy model
    scores 0.968 half/half and 0.984 fit on 200 training episodes (docs/world_model.md).
    """
    if fit_dataset is None:
        if len(dataset) < 2:
            raise ValueError(f"dataset: the probe needs >= 2 episodes (fit on half, test on half), got {len(dataset)}")
        half = len(dataset) // 2
        fit_episodes, test_episodes = dataset.episodes[:half], dataset.episodes[half:]
    else:
        if len(fit_dataset) < 1 or len(dataset) < 1:
            raise ValueError(f"dataset, fit_dataset: the probe needs >= 1 episode in each, got {len(dataset)} and "
                             f"{len(fit_dataset)}")
        fit_episodes, test_episodes = fit_dataset.episodes[:PROBE_FIT_EPISODES], dataset.episodes

    def latents_and_states(episodes) -> tuple[np.ndarray, np.ndarray]:
        beliefs, _ = filter_episodes(runtime, episodes)
        return runtime.latent(beliefs), np.concatenate([e["true_state"] for e in episodes])

    r2 = linear_probe_r2(*latents_and_states(fit_episodes), *latents_and_states(test_episodes))
    return {"r2_per_dim": r2.tolist(), "r2_mean": float(r2.mean()), "fit_episodes": len(fit_episodes),
            "test_episodes": len(test_episodes), "fit_on": "held-out half" if fit_dataset is None else "fit_dataset"}


def evaluate(runtime: TorchRuntime, dataset: TrajectoryDataset, *, context: int = 5, horizon: int = 10,
             windows: int = 64, seed: int = 0, baseline: nn.Module | None = None,
             probe_fit: TrajectoryDataset | None = None) -> tuple[dict[str, Any], dict]:
    """-> (summary JSON-able dict, arrays for the report: "truth", and one entry per method, uint8 [B, H, h, w, 3]).
    `probe_fit`: the episodes the latent probe is fit on (default: half of `dataset`; see latent_probe)."""
    if context < 1 or horizon < 1:
        raise ValueError(f"context and horizon: expected >= 1, got {context}, {horizon}")
    batch = dataset.sample_windows(np.random.default_rng(seed), windows, context + horizon)
    images, actions, proprio = batch["image"], batch["action"].astype(np.float32), batch["state"].astype(np.float32)
    truth = images[:, context:]
    latents = imagine_with_runtime(runtime, images, actions, context, proprio)
    predictions = {"rssm": draw_predictions(runtime, latents, images[:, context - 1]),
                   "copy_last": np.repeat(images[:, context - 1:context], horizon, axis=1)}
    if getattr(runtime, "draws_on_reference", False):  # what its latents alone draw, beside
        predictions["rssm_latent_only"] = draw_predictions(runtime, latents, images[:, context - 1], False)
    if baseline is not None:
        predictions["pixel"] = predict_with_model(baseline, images, actions, context)
    color = tracked_color(str(dataset.env_args.get("env_name", "")))
    moved = None if color is None else position_error(images[:, context - 1], truth[:, -1], color)[0] > MOVED_PX
    summary = {"context": context, "horizon": horizon, "windows": windows, "seed": seed,
               "env_args": dataset.env_args, "tracked_color": color,
               "moved_windows": None if moved is None else int(moved.sum()),
               "methods": {name: score(frames, truth, color, moved) for name, frames in predictions.items()},
               "probe": latent_probe(runtime, dataset, probe_fit)}
    return summary, {"truth": truth, **predictions}


def write_report(out_dir: str | Path, summary: dict[str, Any], frames: dict[str, np.ndarray], gif_windows: int = 4) -> None:
    """summary.json, metrics_per_horizon.png and prediction.gif (columns: truth, then each method) in `out_dir`."""
    import imageio.v2 as imageio
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    keys = [k for k in ("psnr", "ssim", "position_error_px") if k in summary["methods"]["rssm"]]
    figure, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5))
    steps = np.arange(1, summary["horizon"] + 1)
    for axis, key in zip(np.atleast_1d(axes), keys):
        for name, scores in summary["methods"].items():
            axis.plot(steps, scores[key], marker="o", label=name)
        axis.set_xlabel("horizon step")
        axis.set_title(key)
    np.atleast_1d(axes)[0].legend()
    figure.tight_layout()
    figure.savefig(out_dir / "metrics_per_horizon.png", dpi=100)
    plt.close(figure)
    # GIF: one row per window, one column per method (truth first), one frame per horizon step
    columns = [frames["truth"]] + [frames[name] for name in summary["methods"]]
    grid = np.concatenate([c[:gif_windows] for c in columns], axis=3)  # [W, H, h, C*w, 3]
    movie = np.concatenate(list(grid), axis=1)  # [H, W*h, C*w, 3]
    imageio.mimsave(out_dir / "prediction.gif", list(movie), duration=0.3, loop=0)
