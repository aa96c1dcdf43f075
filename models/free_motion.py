"""The robot's free motion as one linear step, fit robustly to recorded states: s' = A s + B a + c.

Where nothing touches it, a robot (push's pusher, maze's ball) moves exactly linearly in its state and action; walls
and contacts break that on the other steps. A least-squares fit over all steps is pulled off by them, and a step
trained by gradient alone stays far from it (docs/world_model.md, "The robot state observed"). RANSAC needs no
contact labels: fit minimal random subsets, keep the map that most steps obey to within `tolerance`, refit on them.

    weight, bias = fit_free_motion(states, actions, next_states)   # standardized states, as the RSSM holds them
"""
from __future__ import annotations

import numpy as np

TRIALS = 2000  # minimal subsets; with half the steps free, one all-free subset of 7 turns up in ~128 trials
SCORED_STEPS = 4096  # steps each trial is scored on (all steps score the final refit)
MIN_INLIER_FRACTION = 0.1  # fewer steps than this explained exactly: no free motion to hold


def fit_free_motion(states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, *, tolerance: float = 1e-4,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """states float [N, S], actions float [N, A], next_states float [N, S] (one step each) -> (weight float32
    [S, S + A] acting on [s, a], bias float32 [S]) of the linear step that the most steps obey to within
    `tolerance` (largest absolute residual over the state's dims), refit by least squares on those steps."""
    states, actions, next_states = (np.asarray(a, np.float64) for a in (states, actions, next_states))
    if states.ndim != 2 or actions.ndim != 2 or next_states.shape != states.shape or len(actions) != len(states):
        raise ValueError(f"states, actions, next_states: expected [N, S], [N, A], [N, S], got {states.shape}, "
                         f"{actions.shape}, {next_states.shape}")
    inputs = np.concatenate([states, actions, np.ones((len(states), 1))], 1)
    if len(inputs) < 2 * inputs.shape[1]:
        raise ValueError(f"states: a step of {inputs.shape[1]} inputs needs at least {2 * inputs.shape[1]} steps "
                         f"to fit robustly, got {len(inputs)}")
    rng = np.random.default_rng(seed)
    scored = rng.choice(len(inputs), min(SCORED_STEPS, len(inputs)), replace=False)
    best, best_count = None, -1
    for _ in range(TRIALS):
        subset = rng.choice(len(inputs), inputs.shape[1], replace=False)
        coef, *_ = np.linalg.lstsq(inputs[subset], next_states[subset], rcond=None)
        count = int((np.abs(inputs[scored] @ coef - next_states[scored]).max(1) < tolerance).sum())
        if count > best_count:
            best, best_count = coef, count
    inliers = np.abs(inputs @ best - next_states).max(1) < tolerance
    if inliers.mean() < MIN_INLIER_FRACTION:
        raise ValueError(f"states: no linear step explains {MIN_INLIER_FRACTION:.0%} of the steps to within "
                         f"{tolerance} (the best explains {inliers.mean():.1%}); this robot has no exactly linear "
                         "free motion to hold")
    coef, *_ = np.linalg.lstsq(inputs[inliers], next_states[inliers], rcond=None)
    return coef[:-1].T.astype(np.float32), coef[-1].astype(np.float32)
