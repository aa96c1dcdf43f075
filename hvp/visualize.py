"""Pictures people would rather look at than read: videos and contact sheets of episodes."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import imageio.v2 as imageio
import numpy as np


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so 64x64 frames stay crisp in players: [h, w, 3] -> [h*f, w*f, 3]."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def side_by_side(*images: np.ndarray, gap: int = 2) -> np.ndarray:
    """Images of equal height -> one row with white gaps."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = [part for image in images for part in (image, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def write_video(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: int = 10, scale: int = 4) -> Path:
    """uint8 frames [h, w, 3] -> an MP4 (or GIF, by the suffix of `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enlarged = [upscale(frame, scale) for frame in frames]
    if path.suffix == ".gif":
        imageio.mimsave(path, enlarged, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(path, enlarged, fps=fps, macro_block_size=1)
    return path


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], path: str | os.PathLike, scale: int = 2) -> Path:
    """A grid PNG: each row a sequence of equal-size images (e.g. start, subgoals, goal, final)."""
    width = max(len(row) for row in rows)
    blank = np.full_like(rows[0][0], 255)
    lines = [side_by_side(*row, *[blank] * (width - len(row))) for row in rows]
    spacer = np.full((2, lines[0].shape[1], 3), 255, np.uint8)
    sheet = np.concatenate([part for line in lines for part in (line, spacer)][:-1], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, upscale(sheet, scale))
    return path
