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
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from results_io import write_results

CONTEXT, HORIZON, WINDOWS = 5, 10, 128  # bench/world_model.py's open-loop windows
YAW, BLOCK, PUSHER = 4, slice(2, 4), slice(0, 2)  # push's true_state: pusher x, y; block x, y, yaw
QUARTER_TURN = np.pi / 2
YAW_BINS = 60


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


def block_rollout(train_set, windows: dict[str, np.ndarray], episodes: int, threads: int) -> dict[str, float]:
    """Train the state dynamics on the first `episodes` episodes; its open-loop errors on `windows` beside
    copy-last's (metres, mean over windows)."""
    from hvp.data import TrajectoryDataset
    from hvp.models.state_dynamics import recent_actions, train_state_dynamics

    subset = TrajectoryDataset(train_set.episodes[:episodes], train_set.env_args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        dynamics, _ = train_state_dynamics(subset, folder, held_out=0.0, threads=threads, progress=False)
    seconds = time.perf_counter() - started
    states, actions = windows["true_state"].astype(np.float32), windows["action"].astype(np.float32)
    last = CONTEXT - 1
    recent = np.stack([recent_actions(a[:last + 1], dynamics.history)[last] for a in actions])
    predicted = dynamics.rollout(states[:, last], recent, actions[:, last:last + HORIZON])
    truth = states[:, last + 1:last + 1 + HORIZON]
    block = np.linalg.norm(predicted[:, :, BLOCK] - truth[:, :, BLOCK], axis=-1)
    pusher = np.linalg.norm(predicted[:, :, PUSHER] - truth[:, :, PUSHER], axis=-1)
    copy_last = np.linalg.norm(states[:, last:last + 1, BLOCK] - truth[:, :, BLOCK], axis=-1)
    return {"episodes": len(subset), "train_s": round(seconds, 1),
            "block_error_h1": float(block[:, 0].mean()), "block_error_h10": float(block[:, -1].mean()),
            "copy_last_h10": float(copy_last[:, -1].mean()),
            "ratio_h10": float(block[:, -1].mean() / copy_last[:, -1].mean()),
            "pusher_error_h10": float(pusher[:, -1].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="push training episodes (the first N are used per --episodes)")
    parser.add_argument("--held-out", required=True, help="held-out push episodes (bench/world_model.py's)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[300], help="training set sizes to compare")
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
    windows = held_out.sample_windows(np.random.default_rng(args.seed), WINDOWS, CONTEXT + HORIZON)
    rollouts = []
    for episodes in args.episodes:
        rollouts.append(block_rollout(train_set, windows, episodes, args.threads))
        row = rollouts[-1]
        print(f"state dynamics on {episodes} episodes: block {row['block_error_h10']:.4f} m at h10 "
              f"({row['ratio_h10']:.2f}x copy-last), pusher {row['pusher_error_h10']:.4f} m", flush=True)
    write_results(args.out, args.seed, {"data": args.data, "held_out": args.held_out, "probe": probe,
                                        "state_dynamics_from_true_start": rollouts})


if __name__ == "__main__":
    main()
