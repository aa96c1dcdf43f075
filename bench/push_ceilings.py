"""What push's images and data let any model reach on two of the world-model targets (issue 3).

    python bench/push_ceilings.py --data runs/data/push-1300.hdf5 --held-out runs/data/push-heldout.hdf5 \
        --episodes 300 1300 --out bench/results/push_ceilings.json

- The probe. The target reads the raw true state, the block's yaw included. A square block looks the same turned
  by 90 degrees, so no function of an image knows more of its yaw than the yaw modulo 90 degrees. The best any
  image model can read of the raw yaw is its mean given that residue (binned on the training frames), scored by R²
  on the held-out frames; with the four positions read perfectly, that bounds the probe's mean over the state.
- The block. The planner's state dynamics (hvp.models.state_dynamics) trained on the true states of the first N
  training episodes, rolled 10 steps open loop from the true state at the last context frame of the bench's
  windows (as bench/world_model.py samples them: 128 windows of 5 + 10 frames, seed 0), against copy-last. A world
  model has to find that start in images; this one is given it, so its error is a reference for what dynamics
  learned from N episodes reach, not a proof that no learner could do better.
- What of the block the dynamics need (`--block-descriptions`). The same rollout with the block's yaw given raw,
  as what an image shows of it (cos and sin of 4 x yaw: the turned square's orientation, continuous across its
  90-degree symmetry), or not at all (positions only); or with the state read from the images alone: the pusher's
  and the block's colour centroids (px), the very centroids bench/world_model.py scores, so this error is in the
  bench's own unit; or with a trained model's encoder keypoints and the robot's measured state (`points`,
  `--points-of RUN`), read back to the centroids by a linear map: what a dynamics over what that model's encoder
  finds could reach.
- How precise the start must be (`--start-noise-px`): the image states' rollouts again from starts with Gaussian
  noise added to the positions (px), as a reader of that precision would give them.
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from typing import Any, Callable

import numpy as np
from results_io import write_results

CONTEXT, HORIZON, WINDOWS = 5, 10, 128  # bench/world_model.py's open-loop windows
YAW, BLOCK, PUSHER = 4, slice(2, 4), slice(0, 2)  # push's true_state: pusher x, y; block x, y, yaw
QUARTER_TURN = np.pi / 2
YAW_BINS = 60
# the yaw as recorded, as an image shows it, left out; the whole state read from the image (colour centroids, px);
# or a trained model's encoder keypoints (--points-of)
BLOCK_DESCRIPTIONS = ("raw", "seen", "none", "centroids", "points")
IMAGE_DESCRIPTIONS = ("centroids", "points")  # scored in the bench's unit: colour centroids in px
POINT_PX = 32  # the keypoints' [-1, 1] coordinates in px of a 64x64 frame
READING_EPISODES = 100  # training episodes the keypoints' linear map to the objects' centroids is fit on


def image_centroids(images: np.ndarray) -> np.ndarray:
    """uint8 [T, h, w, 3] of one episode or window -> the pusher's and the block's colour centroids (row, col; px)
    [T, 4], the evaluation's block mask; a frame that hides an object keeps the last centroid seen of it."""
    from hvp.models.metrics import mask_centroids
    from push_diagnostics import colour_masks

    columns = []
    for mask in colour_masks(images):
        centroid, shown = mask_centroids(mask)
        if not shown.any():
            raise ValueError("images: an object is hidden in every frame of an episode")
        seen = np.maximum.accumulate(np.where(shown, np.arange(len(shown)), -1))
        columns.append(centroid[np.where(seen >= 0, seen, shown.argmax())])
    return np.concatenate(columns, axis=-1)


def keypoint_reader(run: str) -> Callable[[np.ndarray], np.ndarray]:
    """A trained model's encoder -> its keypoints of frames: uint8 [T, h, w, 3] -> float32 [T, 2K] (px); the noise
    of --start-noise-px goes to these, not to the measured robot state after them."""
    import torch

    from hvp.models.networks import to_float_images
    from hvp.models.runtime import load_runtime

    encoder = load_runtime(run).model.encoder
    if encoder.keypoints is None:
        raise SystemExit(f"--points-of: {run} was trained without --keypoints")

    @torch.no_grad()
    def read(images: np.ndarray) -> np.ndarray:
        return encoder.points(to_float_images(torch.from_numpy(images))).numpy() * POINT_PX

    return read


def describe_block(frames: dict[str, np.ndarray], description: str,
                   points: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """One episode's or window's frames -> its state [T, S]: the positions and the block's yaw as `description`
    gives it, or what the image shows (`points`: a keypoint_reader)."""
    states = frames["true_state"]
    if description == "raw":
        return states
    if description == "centroids":
        return image_centroids(frames["image"])
    if description == "points":  # the robot's own state as it measures it, since the points may all go to the block
        return np.concatenate([points(frames["image"]), frames["state"]], axis=-1)
    positions = states[..., :YAW]
    if description == "none":
        return positions
    turned = 4 * states[..., YAW:YAW + 1]  # one period per quarter turn: what a square's image shows
    return np.concatenate([positions, np.cos(turned), np.sin(turned)], axis=-1)


def object_positions(frames: dict[str, np.ndarray], description: str) -> np.ndarray:
    """The pusher's and the block's positions [T, 4] in the unit a description is scored in."""
    return image_centroids(frames["image"]) if description in IMAGE_DESCRIPTIONS else frames["true_state"][..., :YAW]


def fit_reading(episodes, describe: Callable, description: str) -> Callable[[np.ndarray], np.ndarray]:
    """states [..., S] -> the objects' positions [..., 4]: the first four dims, or for keypoints a least-squares
    linear map fit on READING_EPISODES episodes."""
    if description != "points":
        return lambda states: states[..., :YAW]
    sample = episodes[:READING_EPISODES]
    inputs = np.concatenate([describe(e) for e in sample])
    weights, *_ = np.linalg.lstsq(np.concatenate([inputs, np.ones((len(inputs), 1))], 1),
                                  np.concatenate([object_positions(e, description) for e in sample]), rcond=None)
    return lambda states: states @ weights[:-1] + weights[-1]


def yaw_ceiling(train_yaw: np.ndarray, held_out_yaw: np.ndarray) -> dict[str, float]:
    """R² of the raw yaw's best estimate from what an image shows of it (the yaw modulo a quarter turn)."""
    from hvp.models.metrics import r_squared

    def residue_bin(yaw):
        residue = np.mod(yaw + QUARTER_TURN / 2, QUARTER_TURN)  # in [0, pi/2), the turned-square classes
        return np.minimum((residue / QUARTER_TURN * YAW_BINS).astype(int), YAW_BINS - 1)

    sums = np.bincount(residue_bin(train_yaw), weights=train_yaw, minlength=YAW_BINS)
    counts = np.bincount(residue_bin(train_yaw), minlength=YAW_BINS)
    conditional_mean = np.where(counts > 0, sums / np.maximum(counts, 1), train_yaw.mean())
    best = float(r_squared(conditional_mean[residue_bin(held_out_yaw)], held_out_yaw))
    beyond = float(np.mean(np.abs(held_out_yaw) > QUARTER_TURN / 2))
    return {"yaw_r2_ceiling": best, "probe_mean_ceiling": (4 + best) / 5,
            "held_out_frames_beyond_45_degrees": beyond, "held_out_yaw_std": float(held_out_yaw.std())}


def block_rollout(train_set, windows: dict[str, np.ndarray], episodes: int, threads: int,
                  description: str = "raw", start_noise: tuple[float, ...] = (),
                  points: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Train the state dynamics on the first `episodes` episodes, the state described as `description` says; its
    open-loop errors on `windows` beside copy-last's (the description's unit, mean over windows), and for the image
    states the h10 ratio with Gaussian noise of each `start_noise` std (px) added to the start's positions (a reader
    of that precision)."""
    from hvp.data import TrajectoryDataset
    from hvp.models.state_dynamics import recent_actions, train_state_dynamics

    describe = lambda frames: describe_block(frames, description, points).astype(np.float32)  # noqa: E731
    subset = TrajectoryDataset([{**e, "true_state": describe(e)} for e in train_set.episodes[:episodes]],
                               train_set.env_args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        dynamics, _ = train_state_dynamics(subset, folder, held_out=0.0, threads=threads, progress=False)
    seconds = time.perf_counter() - started
    read = fit_reading(train_set.episodes, describe, description)
    count, last = len(windows["action"]), CONTEXT - 1
    window = lambda i: {key: column[i] for key, column in windows.items()}  # noqa: E731
    states = np.stack([describe(window(i)) for i in range(count)])
    truth = np.stack([object_positions(window(i), description) for i in range(count)])[:, last:last + 1 + HORIZON]
    actions = windows["action"].astype(np.float32)
    recent = np.stack([recent_actions(a[:last + 1], dynamics.history)[last] for a in actions])
    copy_last = np.linalg.norm(truth[:, :1, BLOCK] - truth[:, 1:, BLOCK], axis=-1)

    def errors(start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predicted = read(dynamics.rollout(start, recent, actions[:, last:last + HORIZON]))
        return (np.linalg.norm(predicted[:, :, BLOCK] - truth[:, 1:, BLOCK], axis=-1),
                np.linalg.norm(predicted[:, :, PUSHER] - truth[:, 1:, PUSHER], axis=-1))

    block, pusher = errors(states[:, last])
    rng = np.random.default_rng(0)
    noisy_ratio = {}
    position_dims = states.shape[-1] - windows["state"].shape[-1] if description == "points" else YAW
    for std in start_noise if description in IMAGE_DESCRIPTIONS else ():
        start = states[:, last].copy()
        start[:, :position_dims] += rng.normal(0, std, (count, position_dims)).astype(np.float32)
        noisy_ratio[str(std)] = float(errors(start)[0][:, -1].mean() / copy_last[:, -1].mean())
    start_read = read(states[:, last]) - truth[:, 0]  # how far the start's state reads from the objects
    return {"episodes": len(subset), "block_description": description,
            "unit": "px" if description in IMAGE_DESCRIPTIONS else "m", "train_s": round(seconds, 1),
            "start_read_error": {name: float(np.linalg.norm(start_read[:, dims], axis=-1).mean())
                                 for name, dims in (("pusher", PUSHER), ("block", BLOCK))},
            "block_error_h1": float(block[:, 0].mean()), "block_error_h10": float(block[:, -1].mean()),
            "copy_last_h10": float(copy_last[:, -1].mean()),
            "ratio_h10": float(block[:, -1].mean() / copy_last[:, -1].mean()),
            "pusher_error_h10": float(pusher[:, -1].mean()), "ratio_h10_by_start_noise": noisy_ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="push training episodes (the first N are used per --episodes)")
    parser.add_argument("--held-out", required=True, help="held-out push episodes (bench/world_model.py's)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[300], help="training set sizes to compare")
    parser.add_argument("--block-descriptions", nargs="+", choices=BLOCK_DESCRIPTIONS, default=["raw"],
                        help="the state the dynamics see: the true state with the yaw raw, seen (cos, sin of 4 x yaw) "
                        "or none; the colour centroids; a trained model's keypoints (points, with --points-of)")
    parser.add_argument("--points-of", help="a run trained with --keypoints: the state 'points' is its encoder's")
    parser.add_argument("--start-noise-px", type=float, nargs="*", default=[],
                        help="Gaussian noise stds (px) added to the image states' start positions, one rollout each")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0, help="the windows' sampling seed, as bench/world_model.py's")
    parser.add_argument("--out", default="bench/results/push_ceilings.json")
    args = parser.parse_args()

    from hvp.data import load_dataset

    train_set, held_out = load_dataset(args.data), load_dataset(args.held_out)
    if max(args.episodes) > len(train_set):
        raise SystemExit(f"--episodes: {max(args.episodes)} asked for, {args.data} holds {len(train_set)}")
    yaw = lambda data: np.concatenate([e["true_state"][:, YAW] for e in data.episodes])  # noqa: E731
    probe = yaw_ceiling(yaw(train_set), yaw(held_out))
    print(f"probe: raw yaw R² at most {probe['yaw_r2_ceiling']:.3f}, so the mean at most "
          f"{probe['probe_mean_ceiling']:.3f}")
    if "points" in args.block_descriptions and not args.points_of:
        raise SystemExit("--block-descriptions points: name the trained run whose keypoints they are (--points-of)")
    points = keypoint_reader(args.points_of) if args.points_of else None
    windows = held_out.sample_windows(np.random.default_rng(args.seed), WINDOWS, CONTEXT + HORIZON)
    rollouts = []
    for episodes, description in itertools.product(args.episodes, args.block_descriptions):
        rollouts.append(block_rollout(train_set, windows, episodes, args.threads, description,
                                      tuple(args.start_noise_px), points))
        row = rollouts[-1]
        print(f"state dynamics on {episodes} episodes, state {description}: block {row['block_error_h10']:.4f} "
              f"{row['unit']} at h10 ({row['ratio_h10']:.2f}x copy-last), pusher {row['pusher_error_h10']:.4f} "
              f"{row['unit']}; from noisy starts " + ", ".join(
                  f"{std} px: {ratio:.2f}x" for std, ratio in row["ratio_h10_by_start_noise"].items()),
              flush=True)
    write_results(args.out, args.seed, {"data": args.data, "held_out": args.held_out, "probe": probe,
                                        "state_dynamics_from_true_start": rollouts})


if __name__ == "__main__":
    main()
