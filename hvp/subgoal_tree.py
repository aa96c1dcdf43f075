"""Recursive midpoints: how a midpoint network becomes a chain of K = 2**L - 1 subgoals (GCP-style tree).

Numpy only, so the torch generator (hvp.models.subgoal) and the onnxruntime one
(hvp.real.onnx_subgoals) share one tree and differ only in the network call:

    chain = recursive_midpoints(midpoint, start, goal, codes, D, C)   # [D], [D], [N, K, C] -> [N, K, D]

where midpoint(starts [B, D], goals [B, D], codes [B, C]) -> midpoints float32 [B, D].
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hvp.contracts import check_array

Midpoint = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def tree_order(count: int) -> list[tuple[int, int, int]]:
    """Midpoint tree over K = count slots in time order -> [(slot, left, right)] parents first.

    Slots are 0..K-1; left = -1 means the start, right = K means the goal. Each slot is the
    midpoint of its two neighbours in the tree (GCP), so K must be 2**L - 1 (1, 3, 7, 15).
    """
    if count < 1 or count & (count + 1):
        raise ValueError(f"subgoals: expected K = 2**L - 1 (1, 3, 7, 15, ...), got {count}")
    order, frontier = [], [(-1, count)]
    while frontier:
        next_frontier = []
        for left, right in frontier:
            if right - left < 2:
                continue
            slot = (left + right) // 2
            order.append((slot, left, right))
            next_frontier += [(left, slot), (slot, right)]
        frontier = next_frontier
    return order


def recursive_midpoints(midpoint: Midpoint, start: np.ndarray, goal: np.ndarray, codes: np.ndarray, latent_dim: int,
                        code_dim: int) -> np.ndarray:
    """start, goal float32 [D]; codes float32 [N, K, C] -> subgoals float32 [N, K, D] in time order (D = latent_dim,
    C = code_dim: the inputs are checked against them). Level by level: the parents of a level's nodes are all
    known, so each level is one batched midpoint call.
    """
    check_array("start", start, (latent_dim,), np.float32)
    check_array("goal", goal, (latent_dim,), np.float32)
    check_array("codes", codes, (None, None, code_dim), np.float32)
    population, count = codes.shape[:2]
    order = tree_order(count)
    slots = {-1: np.broadcast_to(start, (population, latent_dim)), count: np.broadcast_to(goal, (population, latent_dim))}
    level_start = 0
    while level_start < len(order):
        level = [entry for entry in order[level_start:] if entry[1] in slots and entry[2] in slots]
        midpoints = midpoint(np.concatenate([slots[left] for _, left, _ in level]),
                             np.concatenate([slots[right] for _, _, right in level]),
                             np.concatenate([codes[:, slot] for slot, _, _ in level]))
        for index, (slot, _, _) in enumerate(level):
            slots[slot] = midpoints[index * population:(index + 1) * population]
        level_start += len(level)
    return np.stack([slots[k] for k in range(count)], 1).astype(np.float32)
