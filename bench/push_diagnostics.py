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
"""
from __future__ import annotations

import argparse

import numpy as np
from results_io import named_paths, write_results

CONTEXT, HORIZON, WINDOWS = 5, 10, 128  # bench/world_model.py's evaluation
FIT_EPISODES = 100
POSITIONS = slice(0, 4)  # true_state: pusher (x, y), block (x, y), then the block's yaw (seen only modulo 90 degrees)


def colour_masks(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [..., h, w, 3] -> (pusher, block) bool [..., h, w]: the pusher orange (0.95, 0.55, 0.1), the block
    green as the evaluation tracks it (metrics.COLOR_RULES)."""
    from hvp.models.metrics import color_mask

    pixels = frames.astype(np.int16)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (red - blue > 100) & (red > 150) & (green > 60), color_mask(frames, "green")


def pusher_found(frames: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Share of frames that draw any pusher pixel, and the median centroid distance where both show it."""
    from hvp.models.metrics import mask_centroids

    drawn, true = colour_masks(frames)[0], colour_masks(truth)[0]
    (drawn_at, drawn_any), (true_at, true_any) = mask_centroids(drawn), mask_centroids(true)
    both = drawn_any & true_any
    distance = np.linalg.norm(drawn_at - true_at, axis=-1)[both]
    return {"drawn_fraction": float(drawn_any[true_any].mean()), "drawn_pixels": float(drawn.sum((-2, -1)).mean()),
            "true_pixels": float(true.sum((-2, -1)).mean()),
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


def what_the_latent_holds(runtime, fit_episodes, held_out, batch, latents) -> dict:
    """Positions' R^2 from the embedding and from the filtered latent; open-loop latents read by the filtered map."""
    import torch

    from hvp.models.evaluate import filter_episodes
    from hvp.models.metrics import apply_linear_probe, fit_linear_probe, linear_probe_r2
    from hvp.models.networks import to_float_images

    def features(episodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = np.concatenate([e["image"] for e in episodes])
        with torch.no_grad():
            embedded = np.concatenate([runtime.model.encoder(to_float_images(torch.from_numpy(images[i:i + 512])))
                                       .numpy() for i in range(0, len(images), 512)])
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


def measure(run: str, held_out, batch: dict, fit_episodes) -> dict:
    """One model on the held-out windows `batch` (TrajectoryDataset.sample_windows)."""
    from hvp.models.evaluate import draw_predictions, imagine_with_runtime, reconstruct_with_runtime
    from hvp.models.metrics import psnr
    from hvp.models.runtime import load_runtime

    runtime = load_runtime(run)
    images, actions = batch["image"], batch["action"].astype(np.float32)
    truth, last = images[:, CONTEXT:], images[:, CONTEXT - 1]
    latents = imagine_with_runtime(runtime, images, actions, CONTEXT)
    predicted = draw_predictions(runtime, latents, last)
    latent_only = draw_predictions(runtime, latents, last, False)
    return {"psnr_db_h10": float(psnr(predicted[:, -1], truth[:, -1]).mean()),
            "h10": split(predicted[:, -1], truth[:, -1], last),
            "pusher_filtered": pusher_found(reconstruct_with_runtime(runtime, images, actions), images),
            "pusher_open_loop_h10": pusher_found(latent_only[:, -1], truth[:, -1]),
            "positions": what_the_latent_holds(runtime, fit_episodes, held_out, batch, latents)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=RUN_DIR (repeatable)")
    parser.add_argument("--held-out", required=True, help="held-out push episodes (HDF5)")
    parser.add_argument("--fit-data", required=True, help="push episodes the position maps are fit on (HDF5)")
    parser.add_argument("--out", default="bench/results/push_diagnostics.json")
    args = parser.parse_args()
    from hvp.data import load_dataset
    from hvp.models.metrics import psnr

    held_out, fit_episodes = load_dataset(args.held_out), load_dataset(args.fit_data).episodes[:FIT_EPISODES]
    batch = held_out.sample_windows(np.random.default_rng(0), WINDOWS, CONTEXT + HORIZON)
    truth, last = batch["image"][:, -1], batch["image"][:, CONTEXT - 1]
    record = {"copy_last": {"psnr_db_h10": float(psnr(last, truth).mean()), "h10": split(last, truth, last)},
              "models": {}}
    for name, run in named_paths(args.model, "--model").items():
        record["models"][name] = {"run": run, **measure(run, held_out, batch, fit_episodes)}
        shares = record["models"][name]["h10"]
        print(f"{name}: h10 {record['models'][name]['psnr_db_h10']:.2f} dB; error share " + ", ".join(
            f"{part} {value['error_share']:.2f} (exact: {value['psnr_db_with_it_exact']:.2f} dB)"
            for part, value in shares.items()))
        positions = record["models"][name]["positions"]
        print(f"  positions R^2 from the embedding {np.round(positions['embedding_r2'], 3).tolist()}, from the latent "
              f"{np.round(positions['latent_r2'], 3).tolist()}")
    write_results(args.out, 0, record)


if __name__ == "__main__":
    main()
