"""LatentMPC on real MuJoCo rendering: maze-easy, seen through a hand-made runtime whose
latent is the red ball's pixel centroid and whose dynamics are identified from images
of a random-action rollout. Only the images reach the controller; info["success"] is
read by the test to grade it, never by the controller."""
from __future__ import annotations

import numpy as np
import pytest

from hvp.planners import make_optimizer
from hvp.planners.costs import LatentDistance
from hvp.planners.mpc import LatentMPC, MPCConfig

sim = pytest.importorskip("hvp.sim")


def ball_centroid(images: np.ndarray) -> np.ndarray:
    """images uint8 [B, h, w, 3] -> red ball centroid float32 [B, 2] as (column, row) in [-1, 1]."""
    red = (images[..., 0] > 150) & (images[..., 1] < 100) & (images[..., 2] < 100)  # [B, h, w]
    if not red.any(axis=(1, 2)).all():
        raise ValueError("images: expected the red ball in every image, found none in some")
    rows, cols = np.indices(images.shape[1:3])
    count = red.sum(axis=(1, 2))
    centroid = np.stack([(red * cols).sum(axis=(1, 2)) / count, (red * rows).sum(axis=(1, 2)) / count], axis=1)
    size = np.array([images.shape[2] - 1, images.shape[1] - 1])
    return (2 * centroid / size - 1).astype(np.float32)


class BallRuntime:
    """Position from pixels, velocity from consecutive images, v' = W [v, u] identified by least squares."""

    image_shape = (64, 64, 3)
    action_dim = 2
    latent_dim = 2

    def __init__(self, velocity_model: np.ndarray) -> None:
        self.velocity_model = velocity_model.astype(np.float32)  # [2, 4]

    def initial_state(self, batch):
        return {"position": np.zeros((batch, 2), np.float32), "velocity": np.zeros((batch, 2), np.float32),
                "seen": np.zeros((batch, 1), np.float32)}

    def encode(self, images):
        return ball_centroid(images)

    def observe(self, state, images, actions):
        position = ball_centroid(images)
        velocity = state["seen"] * (position - state["position"])  # unknown before the second image
        return {"position": position, "velocity": velocity, "seen": np.ones_like(state["seen"])}

    def imagine(self, state, actions):
        position = np.broadcast_to(state["position"], (len(actions), 2))
        velocity = np.broadcast_to(state["velocity"], (len(actions), 2))
        positions = []
        for step in range(actions.shape[1]):  # loop over H only, the population is batched
            velocity = np.concatenate([velocity, actions[:, step]], axis=1) @ self.velocity_model.T
            position = position + velocity
            positions.append(position)
        return np.stack(positions, axis=1).astype(np.float32)

    def decode(self, latents):
        """A red dot on grey at each latent position: uint8 [..., 64, 64, 3]."""
        flat = latents.reshape(-1, 2)
        images = np.full((len(flat), *self.image_shape), 200, np.uint8)
        rows, cols = np.indices(self.image_shape[:2])
        pixels = (flat + 1) / 2 * 63
        near = (cols - pixels[:, :1, None]) ** 2 + (rows - pixels[:, 1:, None]) ** 2 < 16
        images[near] = (230, 40, 25)
        return images.reshape(*latents.shape[:-1], *self.image_shape)

    def latent(self, state):
        return state["position"]


def identify_velocity_model(env, steps: int = 150) -> np.ndarray:
    """Least squares fit of v_{t+1} = W [v_t, u_t] from ball centroids in images -> W float [2, 4]."""
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=100)
    positions, actions = [ball_centroid(obs["image"][None])[0]], []
    action = np.zeros(2)
    for _ in range(steps):
        action = np.clip(0.8 * action + 0.5 * rng.standard_normal(2), -1, 1)  # smooth random exploration
        obs, *_ = env.step(action.astype(np.float32))
        positions.append(ball_centroid(obs["image"][None])[0])
        actions.append(action)
    velocities = np.diff(np.array(positions), axis=0)  # v_t: motion during step t
    inputs = np.concatenate([velocities[:-1], np.array(actions)[1:]], axis=1)
    return np.linalg.lstsq(inputs, velocities[1:], rcond=None)[0].T


def test_latent_mpc_drives_the_ball_to_the_goal_image_in_maze_easy():
    env = sim.make("maze-easy")
    try:
        runtime = BallRuntime(identify_velocity_model(env))
        controller = LatentMPC(runtime, make_optimizer("cem"), LatentDistance("all"), MPCConfig.preset("cpu"))
        for seed in range(3):
            obs, info = env.reset(seed=seed)
            state = controller.reset(info["goal_image"], seed=seed)
            done = False
            while not done:
                state, action = controller.act(state, obs)
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            assert info["success"], f"seed {seed}: ended {info['distance']:.2f} from the goal"
            assert controller.imagined(state).shape == (10, 2)
    finally:
        env.close()
