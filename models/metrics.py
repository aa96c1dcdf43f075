"""Image and latent quality measures: PSNR, SSIM, tracked-object centroids, linear-probe R^2.

Object tracking is by color, documented per task: the maze ball and the reach hand are
red (R - max(G, B) > 80 of 255), the push block is green (G - max(R, B) > 40). Positions
are in pixels; a frame where the object's color is absent (the collapse failure: the
decoder drew only the background) scores `missing_penalty` pixels and is counted.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

COLOR_RULES = {"red": (0, 80), "green": (1, 40)}  # channel that dominates, by how much (0-255)
TRACKED_COLOR = {"maze": "red", "reach": "red", "push": "green"}  # env name prefix -> object color


def tracked_color(env_name: str) -> str | None:
    """The color of the object to track in `env_name`'s images, or None when hvp knows none."""
    return next((color for prefix, color in TRACKED_COLOR.items() if env_name.startswith(prefix)), None)


def psnr(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """uint8 [..., h, w, 3] pairs -> float64 [...] in dB (peak 255)."""
    error = ((predicted.astype(np.float64) - truth.astype(np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return 10.0 * np.log10(255.0 ** 2 / np.maximum(error, 1e-10))


def ssim(predicted: np.ndarray, truth: np.ndarray, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Structural similarity (Wang et al. 2004, Gaussian window, per channel then averaged): uint8 [..., h, w, 3] -> [...]."""
    shape = predicted.shape[:-3]
    a = torch.from_numpy(predicted.reshape(-1, *predicted.shape[-3:])).permute(0, 3, 1, 2).float() / 255.0
    b = torch.from_numpy(truth.reshape(-1, *truth.shape[-3:])).permute(0, 3, 1, 2).float() / 255.0
    offsets = torch.arange(window, dtype=torch.float32) - window // 2
    gauss = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    gauss = (gauss / gauss.sum()).expand(3, 1, 1, window)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian: rows then columns
        return F.conv2d(F.conv2d(x, gauss, groups=3), gauss.transpose(2, 3), groups=3)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a ** 2
    var_b = blur(b * b) - mean_b ** 2
    cov = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))
    return index.mean(dim=(1, 2, 3)).double().numpy().reshape(shape)


def object_centroids(images: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [..., h, w, 3] -> (centroids float64 [..., 2] as (row, col) pixels, found bool [...])."""
    if color not in COLOR_RULES:
        raise ValueError(f"color: expected one of {sorted(COLOR_RULES)}, got {color!r}")
    return mask_centroids(color_mask(images, color))


def color_mask(images: np.ndarray, color: str) -> np.ndarray:
    """uint8 [..., h, w, 3] -> bool [..., h, w]: the pixels COLOR_RULES counts as `color`."""
    channel, margin = COLOR_RULES[color]
    pixels = images.astype(np.int16)
    others = np.delete(pixels, channel, axis=-1).max(axis=-1)
    return (pixels[..., channel] - others) > margin


def mask_centroids(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bool [..., h, w] -> (centroids float64 [..., 2] as (row, col) pixels, any pixel set bool [...])."""
    count = mask.sum(axis=(-2, -1))
    rows, cols = np.indices(mask.shape[-2:])
    centroid = np.stack([(mask * rows).sum(axis=(-2, -1)), (mask * cols).sum(axis=(-2, -1))], -1)
    return centroid / np.maximum(count, 1)[..., None], count > 0


def position_error(predicted: np.ndarray, truth: np.ndarray, color: str,
                   missing_penalty: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel distance between the object's centroid in predicted and true frames uint8 [..., h, w, 3].

    -> (error float64 [...], missing bool [...]). Frames where the truth lacks the object are
    NaN; where only the prediction lacks it, the error is `missing_penalty` (default: half the
    image diagonal).
    """
    predicted_xy, predicted_found = object_centroids(predicted, color)
    true_xy, true_found = object_centroids(truth, color)
    penalty = missing_penalty if missing_penalty is not None else 0.5 * float(np.hypot(*truth.shape[-3:-1]))
    error = np.where(predicted_found, np.linalg.norm(predicted_xy - true_xy, axis=-1), penalty)
    return np.where(true_found, error, np.nan), true_found & ~predicted_found


def with_bias(x: np.ndarray) -> np.ndarray:
    """[..., D] -> float64 [..., D + 1]: a column of ones appended."""
    return np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1).astype(np.float64)


def fit_linear_probe(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Ridge regression y = [x, 1] W: x [M, D], y [M, X] -> W float64 [D + 1, X]."""
    features = with_bias(x)
    gram = features.T @ features + ridge * len(features) * np.eye(features.shape[1])
    return np.linalg.solve(gram, features.T @ y.astype(np.float64))


def apply_linear_probe(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W from fit_linear_probe, x [..., D] -> [..., X]."""
    return with_bias(x) @ weights


def linear_probe_r2(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                    ridge: float = 1e-3) -> np.ndarray:
    """Fit y = [x, 1] W by ridge regression on train, score R^2 per output on test.

    train_x [M, D], train_y [M, X], test_x [K, D], test_y [K, X] -> float64 [X].
    """
    return r_squared(apply_linear_probe(fit_linear_probe(train_x, train_y, ridge), test_x), test_y)


def r_squared(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Coefficient of determination per output: predicted, truth [K, ...] -> float64 [...]."""
    total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - ((truth - predicted) ** 2).sum(axis=0) / np.maximum(total, 1e-12)
