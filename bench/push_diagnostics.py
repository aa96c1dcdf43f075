"""Why a push world model predicts what it does: where its open-loop error sits, what its latent holds.

    MUJOCO_GL=egl python bench/push_diagnostics.py --model blend=runs/blend/push-s0 \
        --held-out runs/data/push-heldout.hdf5 --fit-data runs/cpu-preset/push.hdf5 \
        --out bench/results/push_diagnostics.json

On the same held-out windows bench/world_model.py scores (context 5, horizon 10, seed 0), each predicted frame at
the last horizon (drawn on the last context frame when the model can) is split by colour into the pusher's pixels
(orange, in the true frame or the last context frame, grown by one pixel), the block's (green, likewise) and the
rest. It reports each part's share of the squared error beside copy-last's, and the PSNR the prediction would reach
with each part replaced by the truth: what each object, drawn right, is worth. It also finds the pusher in the
model's filtered reconstructions and open-loop frames: how often it is drawn at all (any orange pixel) and, where it
is, how far from the true one. Last, linear maps to the true positions (pusher, block), fit on --fit-data's first
FIT_EPISODES episodes: R^2 on the held-out frames from the encoder's embedding and from the filtered latent (where
the positions are lost), and how far the latent's map reads the truth from open-loop latents 1, 5 and 10 steps out
(whether the rollout stays where the filter would be).

Where the pusher goes wrong: the held-out windows split by what the pusher meets from the last context frame on
(the block within reach, else an outer wall within reach, else nothing: free motion), its centroid error at the last
horizon per kind beside copy-last's; and how exactly a linear map of (position, velocity, action) gives the next
(position, velocity) on the free steps of --fit-data, so that what the model misses there is its own; how far a
linear map from the pusher's colour centroids in the context frames and the window's actions (fit on free windows
of --fit-data) finds it at each horizon, what the images themselves allow; and the model's own pusher error at each
horizon in free motion, from the filtered reconstruction of the last context frame (h0) on. For models
with keypoints, each encoder point's precision: the object whose colour centroid a linear map from the point reads
best, that map's median residual in pixels, and the softmax's median peak weight (near 1, the point sits on a cell
centre and moves in steps of a cell). For models holding the robot's state in h (--proprio-weight), how far the
pusher position that state holds is from the recorded one at horizons 1, 5 and 10 (median, m; all windows and free),
and how far its linear robot step alone (no correction) puts the pusher after one free step of --fit-data. For
models with point dynamics, where the points rolled in h put the block (a linear map from the encoder's points to
its centroid, fit on --fit-data), apart from where the decoder draws it.
"""
from __future__ import annotations

import argparse

import numpy as np
from results_io import named_paths, write_results

CONTEXT, HORIZON, WINDOWS = 5, 10, 128  # bench/world_model.py's evaluation
FIT_EPISODES = 100
POSITIONS = slice(0, 4)  # true_state: pusher (x, y), block (x, y), then the block's yaw (seen only modulo 90 degrees)
REACH_MARGIN = 0.05  # m: a pusher this close to touching the block (any yaw) or a wall may be stopped by it
POINT_FRAMES = 600  # held-out frames the keypoints' precision is measured on
ORACLE_WINDOWS = 6000  # windows of --fit-data the centroid map is fit on (their free ones: about a quarter)


def colour_masks(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [..., h, w, 3] -> (pusher, block) bool [..., h, w]: the pusher orange (0.95, 0.55, 0.1), the block
    green as the evaluation tracks it (metrics.COLOR_RULES)."""
    from hvp.models.metrics import color_mask

    pixels = frames.astype(np.int16)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (red - blue > 100) & (red > 150) & (green > 60), color_mask(frames, "green")


def pusher_error(drawn: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pusher masks bool [..., h, w] of predicted and true frames -> centroid distance (px) [...], NaN where either
    frame shows no pusher."""
    from hvp.models.metrics import mask_centroids

    (drawn_at, drawn_any), (true_at, true_any) = mask_centroids(drawn), mask_centroids(true)
    return np.where(drawn_any & true_any, np.linalg.norm(drawn_at - true_at, axis=-1), np.nan)


def pusher_found(frames: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Share of frames that draw any pusher pixel, and the median centroid distance where both show it."""
    drawn, true = colour_masks(frames)[0], colour_masks(truth)[0]
    distance = pusher_error(drawn, true)
    distance = distance[~np.isnan(distance)]
    true_any = true.any((-2, -1))
    return {"drawn_fraction": float(drawn.any((-2, -1))[true_any].mean()),
            "drawn_pixels": float(drawn.sum((-2, -1)).mean()), "true_pixels": float(true.sum((-2, -1)).mean()),
            "median_error_px": float(np.median(distance)) if distance.size else None}


def split(predicted: np.ndarray, truth: np.ndarray, last: np.ndarray) -> dict[str, dict[str, float]]:
    """h10 frames uint8 [N, h, w, 3] -> each region's share of the squared error and the PSNR with it exact."""
    from scipy.ndimage import binary_dilation

    from hvp.models.metrics import psnr

    (pusher_true, block_true), (pusher_last, block_last) = colour_masks(truth), colour_masks(last)
    grow = np.ones((1, 3, 3), bool)  # one pixel around each object, per frame
    pusher = binary_dilation(pusher_true | pusher_last, grow)
    regions = {"pusher": pusher, "block": binary_dilation(block_true | block_last, grow) & ~pusher}
    regions["rest"] = ~(regions["pusher"] | regions["block"])
    error = ((predicted.astype(np.float64) - truth.astype(np.float64)) ** 2).sum(-1)
    return {name: {"error_share": float(error[mask].sum() / max(error.sum(), 1e-12)),
                   "psnr_db_with_it_exact": float(psnr(np.where(mask[..., None], truth, predicted), truth).mean())}
            for name, mask in regions.items()}


def window_kinds(true_states: np.ndarray) -> dict[str, np.ndarray]:
    """true_state float [N, L, 5] over the frames that matter -> bool [N] per kind: "near_block" (the pusher comes
    within reach of the block), "near_wall" (else within reach of an outer wall), "free" (neither)."""
    from hvp.sim.arena import HALF
    from hvp.sim.push import BLOCK_HALF, PUSHER_RADIUS

    pusher, block = true_states[..., :2], true_states[..., 2:4]
    reach = PUSHER_RADIUS + BLOCK_HALF * np.sqrt(2) + REACH_MARGIN
    near_block = (np.linalg.norm(pusher - block, axis=-1) < reach).any(1)
    near_wall = (np.abs(pusher) > HALF - PUSHER_RADIUS - REACH_MARGIN).any((1, 2)) & ~near_block
    return {"free": ~near_block & ~near_wall, "near_wall": near_wall, "near_block": near_block}


def pusher_error_by_kind(predicted: np.ndarray, truth: np.ndarray, kinds: dict[str, np.ndarray]) -> dict:
    """h10 frames uint8 [N, h, w, 3] -> per window kind: windows, and the pusher's centroid error (px; median and
    mean) over the windows where both frames show it."""
    error = pusher_error(colour_masks(predicted)[0], colour_masks(truth)[0])
    return {kind: {"windows": int(mask.sum()), "median_error_px": float(np.nanmedian(error[mask])),
                   "mean_error_px": float(np.nanmean(error[mask]))} for kind, mask in kinds.items() if mask.any()}


def free_steps(episodes) -> tuple[np.ndarray, np.ndarray]:
    """The steps where the pusher is free (window_kinds over the step's two frames) -> ((pusher state, action)
    [N, S + A], next pusher state [N, S]); state: pusher (x, y, vx, vy)."""
    inputs, targets = [], []
    for episode in episodes:
        state, action = episode["state"], episode["action"]
        free = window_kinds(np.stack([episode["true_state"][:-1], episode["true_state"][1:]], 1))["free"]
        inputs.append(np.concatenate([state[:-1], action[:len(state) - 1]], 1)[free])
        targets.append(state[1:][free])
    return np.concatenate(inputs), np.concatenate(targets)


def free_motion_linearity(episodes) -> dict[str, float]:
    """One least-squares linear map (pusher position, velocity, action, 1) -> next (position, velocity) over the
    free steps: its largest position residual (m)."""
    inputs, targets = free_steps(episodes)
    inputs = np.concatenate([inputs, np.ones((len(inputs), 1))], 1)
    weights, *_ = np.linalg.lstsq(inputs, targets, rcond=None)
    return {"free_steps": len(inputs),
            "largest_position_residual_m": float(np.abs(inputs @ weights - targets)[:, :2].max())}


def pusher_centroids(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, T, h, w, 3] -> (the pusher's colour centroid (px) [N, T, 2], bool [N]: shown in every frame)."""
    from hvp.models.metrics import mask_centroids

    centroids, shown = mask_centroids(colour_masks(images)[0])
    return centroids, shown.all(1)


def centroid_oracle(fit_data, batch: dict, free: np.ndarray) -> dict[str, float]:
    """Least-squares linear maps (the pusher's centroids in the CONTEXT frames, the window's actions, 1) -> its
    centroid at each horizon, fit on the free windows of ORACLE_WINDOWS from fit_data -> their median error (px)
    on the free held-out windows of `batch`: how precisely the images and actions place the free pusher."""
    def inputs(windows: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        centroids, shown = pusher_centroids(windows["image"])
        count = len(centroids)
        return (np.concatenate([centroids[:, :CONTEXT].reshape(count, -1), windows["action"][:, :-1].reshape(count, -1),
                                np.ones((count, 1))], 1), centroids, shown)

    fit_windows = fit_data.sample_windows(np.random.default_rng(1), ORACLE_WINDOWS, CONTEXT + HORIZON)
    fit_inputs, fit_centroids, fit_shown = inputs(fit_windows)
    use = fit_shown & window_kinds(fit_windows["true_state"][:, CONTEXT - 1:])["free"]
    held_inputs, held_centroids, held_shown = inputs(batch)
    record = {"fit_windows": int(use.sum())}
    for h in range(1, HORIZON + 1):
        weights, *_ = np.linalg.lstsq(fit_inputs[use], fit_centroids[use, CONTEXT - 1 + h], rcond=None)
        error = np.linalg.norm(held_inputs @ weights - held_centroids[:, CONTEXT - 1 + h], axis=-1)
        record[f"h{h}"] = float(np.median(error[free & held_shown]))
    return record


def pusher_error_by_horizon(filtered: np.ndarray, predicted: np.ndarray, images: np.ndarray,
                            free: np.ndarray) -> dict[str, float]:
    """The model's pusher centroid error (px, median over the free windows): h0 the filtered reconstruction of the
    last context frame, h1.. the open-loop frames predicted [N, H, h, w, 3] against images [N, C+H, h, w, 3]."""
    drawn = np.concatenate([filtered[:, CONTEXT - 1:CONTEXT], predicted], 1)
    error = pusher_error(colour_masks(drawn)[0], colour_masks(images[:, CONTEXT - 1:])[0])
    return {f"h{h}": float(np.nanmedian(error[free, h])) for h in range(HORIZON + 1)}


def point_precision(runtime, frames: np.ndarray) -> list[dict]:
    """The encoder's keypoints on frames uint8 [N, h, w, 3] -> per point: the object it follows, the median
    residual (px) of a linear map from it to that object's colour centroid, its softmax's median peak weight."""
    import torch

    from hvp.models.metrics import mask_centroids
    from hvp.models.networks import to_float_images

    encoder = runtime.model.encoder
    with torch.no_grad():
        weights = encoder.point_weights(to_float_images(torch.from_numpy(frames))).numpy()
    points = weights @ encoder.keypoints.grid.numpy()  # [N, K, 2] in [-1, 1]
    objects = dict(zip(("pusher", "block"), (mask_centroids(mask) for mask in colour_masks(frames))))
    precision = []
    for point in range(points.shape[1]):
        residuals = {}
        for name, (centroid, shown) in objects.items():
            inputs = np.concatenate([points[shown, point], np.ones((int(shown.sum()), 1))], 1)
            fit, *_ = np.linalg.lstsq(inputs, centroid[shown], rcond=None)
            residuals[name] = float(np.median(np.linalg.norm(inputs @ fit - centroid[shown], axis=-1)))
        follows = min(residuals, key=residuals.get)
        precision.append({"follows": follows, "median_residual_px": residuals[follows],
                          "median_peak_weight": float(np.median(weights[:, point].max(-1)))})
    return precision


def encoder_embeddings(model, images: np.ndarray, chunk: int = 512) -> np.ndarray:
    """The RSSM encoder's embeddings of frames uint8 [N, h, w, 3] -> float32 [N, E], in chunks."""
    import torch

    from hvp.models.networks import to_float_images

    with torch.no_grad():
        return np.concatenate([model.encoder(to_float_images(torch.from_numpy(images[i:i + chunk]))).numpy()
                               for i in range(0, len(images), chunk)])


def what_the_latent_holds(runtime, fit_episodes, held_out, batch, latents) -> dict:
    """Positions' R^2 from the embedding and from the filtered latent; open-loop latents read by the filtered map."""
    from hvp.models.evaluate import filter_episodes
    from hvp.models.metrics import apply_linear_probe, fit_linear_probe, linear_probe_r2

    def features(episodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        embedded = encoder_embeddings(runtime.model, np.concatenate([e["image"] for e in episodes]))
        beliefs, _ = filter_episodes(runtime, episodes)
        return embedded, runtime.latent(beliefs), np.concatenate([e["true_state"] for e in episodes])[:, POSITIONS]

    fit_embedded, fit_latent, fit_truth = features(fit_episodes)
    embedded, latent, truth = features(held_out.episodes)
    imagined = apply_linear_probe(fit_linear_probe(fit_latent, fit_truth), latents)  # [N, H, 4]
    off = np.abs(imagined - batch["true_state"][:, CONTEXT:, POSITIONS])
    return {"embedding_r2": linear_probe_r2(fit_embedded, fit_truth, embedded, truth).tolist(),
            "latent_r2": linear_probe_r2(fit_latent, fit_truth, latent, truth).tolist(),
            "open_loop_read_error_m": {f"h{h}": {"pusher": float(np.linalg.norm(off[:, h - 1, :2], axis=-1).mean()),
                                                "block": float(np.linalg.norm(off[:, h - 1, 2:], axis=-1).mean())}
                                       for h in (1, 5, HORIZON)}}


def rolled_points(runtime, fit_episodes, batch: dict, latents: np.ndarray) -> dict:
    """For a model with point dynamics: where the points it rolls in h put the block, read by a least-squares linear
    map from the encoder's points to the block's colour centroid (fit on `fit_episodes`' frames) -> the mean error
    (px) at horizons 1, 5 and 10 beside copy-last's at 10: the dynamics' error apart from the drawing's."""
    from hvp.models.metrics import mask_centroids

    start, stop = runtime.model.point_dims
    images = np.concatenate([e["image"] for e in fit_episodes])
    points = encoder_embeddings(runtime.model, images)[:, start - stop:]  # the embedding ends with the points
    centroid, shown = mask_centroids(colour_masks(images)[1])
    inputs = np.concatenate([points, np.ones((len(points), 1))], 1)
    weights, *_ = np.linalg.lstsq(inputs[shown], centroid[shown], rcond=None)
    read = latents[..., start:stop] @ weights[:-1] + weights[-1]  # [N, H, 2]
    truth, found = mask_centroids(colour_masks(batch["image"][:, CONTEXT:])[1])
    off = np.where(found, np.linalg.norm(read - truth, axis=-1), np.nan)
    last, _ = mask_centroids(colour_masks(batch["image"][:, CONTEXT - 1])[1])
    copy_last = float(np.nanmean(np.where(found[:, -1], np.linalg.norm(last - truth[:, -1], axis=-1), np.nan)))
    return {**{f"h{h}": float(np.nanmean(off[:, h - 1])) for h in (1, 5, HORIZON)}, "copy_last_h10": copy_last,
            "ratio_h10": float(np.nanmean(off[:, -1])) / copy_last}


def robot_state_rollout(model, latents: np.ndarray, states: np.ndarray, free: np.ndarray) -> dict:
    """For a model holding the robot's state in h (proprio_weight): the pusher position that state holds in the
    imagined latents float32 [N, H, D] against the recorded one, states [N, H, S] -> median distance (m) by horizon,
    over all windows and over the free ones (window_kinds)."""
    size, deter = model.config.proprio_dim, model.config.deter_dim
    held = latents[..., deter - size:deter] * model.proprio_std.numpy() + model.proprio_mean.numpy()
    off = np.linalg.norm(held[..., :2] - states[..., :2], axis=-1)
    return {group: {f"h{h}": float(np.median(off[rows, h - 1])) for h in (1, 5, HORIZON)}
            for group, rows in (("all", slice(None)), ("free", free))}


def robot_step_free_error(model, fit_episodes) -> float:
    """For a model holding the robot's state in h: how far its linear robot step alone (robot_step, without the
    bounded correction) puts the pusher after one free step of `fit_episodes`, median m; 0 where it has learned free
    motion exactly (free_motion_linearity: a linear map can)."""
    import torch

    inputs, targets = free_steps(fit_episodes)
    size, mean, std = model.config.proprio_dim, model.proprio_mean.numpy(), model.proprio_std.numpy()
    standardized = np.concatenate([(inputs[:, :size] - mean) / std, inputs[:, size:]], 1).astype(np.float32)
    with torch.no_grad():
        stepped = model.robot_step(torch.from_numpy(standardized)).numpy() * std + mean
    return float(np.median(np.linalg.norm(stepped[:, :2] - targets[:, :2], axis=1)))


def measure(run: str, held_out, batch: dict, fit_episodes, kinds: dict[str, np.ndarray]) -> dict:
    """One model on the held-out windows `batch` (TrajectoryDataset.sample_windows), split as `kinds` (window_kinds)."""
    from hvp.models.evaluate import draw_predictions, imagine_with_runtime, reconstruct_with_runtime
    from hvp.models.metrics import psnr
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(run)
    images, actions, proprio = batch["image"], batch["action"].astype(np.float32), batch["state"].astype(np.float32)
    truth, last = images[:, CONTEXT:], images[:, CONTEXT - 1]
    latents = imagine_with_runtime(runtime, images, actions, CONTEXT, proprio)
    predicted = draw_predictions(runtime, latents, last)
    latent_only = draw_predictions(runtime, latents, last, False)
    filtered = reconstruct_with_runtime(runtime, images, actions, proprio)
    record = {"psnr_db_h10": float(psnr(predicted[:, -1], truth[:, -1]).mean()),
              "h10": split(predicted[:, -1], truth[:, -1], last),
              "pusher_h10_by_window_kind": pusher_error_by_kind(predicted[:, -1], truth[:, -1], kinds),
              "pusher_free_by_horizon": pusher_error_by_horizon(filtered, predicted, images, kinds["free"]),
              "pusher_filtered": pusher_found(filtered, images),
              "pusher_open_loop_h10": pusher_found(latent_only[:, -1], truth[:, -1]),
              "positions": what_the_latent_holds(runtime, fit_episodes, held_out, batch, latents)}
    if runtime.model.config.proprio_dim:
        record["robot_state_rollout_m"] = robot_state_rollout(runtime.model, latents, proprio[:, CONTEXT:],
                                                              kinds["free"])
        record["robot_step_free_error_m"] = robot_step_free_error(runtime.model, fit_episodes)
    if runtime.model.config.point_dynamics:
        record["block_from_rolled_points_px"] = rolled_points(runtime, fit_episodes, batch, latents)
    if runtime.model.config.keypoints:
        frames = np.concatenate([episode["image"] for episode in held_out.episodes])[:POINT_FRAMES]
        record["keypoints"] = point_precision(runtime, frames)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=RUN_DIR (repeatable)")
    parser.add_argument("--held-out", required=True, help="held-out push episodes (HDF5)")
    parser.add_argument("--fit-data", required=True, help="push episodes the position maps are fit on (HDF5)")
    parser.add_argument("--out", default="bench/results/push_diagnostics.json")
    args = parser.parse_args()
    from hvp.data import load_dataset
    from hvp.models.metrics import psnr

    held_out, fit_data = load_dataset(args.held_out), load_dataset(args.fit_data)
    fit_episodes = fit_data.episodes[:FIT_EPISODES]
    batch = held_out.sample_windows(np.random.default_rng(0), WINDOWS, CONTEXT + HORIZON)
    truth, last = batch["image"][:, -1], batch["image"][:, CONTEXT - 1]
    kinds = window_kinds(batch["true_state"][:, CONTEXT - 1:])
    record = {"copy_last": {"psnr_db_h10": float(psnr(last, truth).mean()), "h10": split(last, truth, last),
                            "pusher_h10_by_window_kind": pusher_error_by_kind(last, truth, kinds)},
              "free_motion_linearity": free_motion_linearity(fit_episodes),
              "pusher_free_centroid_oracle": centroid_oracle(fit_data, batch, kinds["free"]), "models": {}}
    print("pusher in free motion, a linear map from context centroids and actions, median px: " + ", ".join(
        f"h{h} {record['pusher_free_centroid_oracle'][f'h{h}']:.2f}" for h in (1, 5, HORIZON)))
    for name, run in named_paths(args.model, "--model").items():
        record["models"][name] = {"run": run, **measure(run, held_out, batch, fit_episodes, kinds)}
        shares = record["models"][name]["h10"]
        print(f"{name}: h10 {record['models'][name]['psnr_db_h10']:.2f} dB; error share " + ", ".join(
            f"{part} {value['error_share']:.2f} (exact: {value['psnr_db_with_it_exact']:.2f} dB)"
            for part, value in shares.items()))
        positions = record["models"][name]["positions"]
        print(f"  positions R^2 from the embedding {np.round(positions['embedding_r2'], 3).tolist()}, from the latent "
              f"{np.round(positions['latent_r2'], 3).tolist()}")
        print("  pusher at h10, median px (model / copy-last): " + ", ".join(
            f"{kind} ({value['windows']}) {value['median_error_px']:.2f} / "
            f"{record['copy_last']['pusher_h10_by_window_kind'][kind]['median_error_px']:.2f}"
            for kind, value in record["models"][name]["pusher_h10_by_window_kind"].items()))
        print("  pusher in free motion by horizon, median px: " + ", ".join(
            f"{h} {value:.2f}" for h, value in record["models"][name]["pusher_free_by_horizon"].items()))
        if "robot_step_free_error_m" in record["models"][name]:
            print(f"  its linear robot step alone, one free step, median m: "
                  f"{record['models'][name]['robot_step_free_error_m']:.4f}")
        for group, by_horizon in record["models"][name].get("robot_state_rollout_m", {}).items():
            print(f"  the robot state's pusher, {group} windows, median m: " + ", ".join(
                f"{h} {value:.4f}" for h, value in by_horizon.items()))
        if "block_from_rolled_points_px" in record["models"][name]:
            rolled = record["models"][name]["block_from_rolled_points_px"]
            print("  the block where its rolled points put it, mean px: " + ", ".join(
                f"{h} {rolled[h]:.2f}" for h in ("h1", "h5", "h10")) + f" ({rolled['ratio_h10']:.2f}x copy-last)")
        for point, precision in enumerate(record["models"][name].get("keypoints", [])):
            print(f"  point {point}: {precision['follows']}, {precision['median_residual_px']:.2f} px, peak weight "
                  f"{precision['median_peak_weight']:.3f}")
    write_results(args.out, 0, record)


if __name__ == "__main__":
    main()
