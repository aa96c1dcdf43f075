"""A numpy ModelRuntime for an exactly linear system, and its "camera".

The true system is a planar double integrator, x = (px, py, vx, vy):
x' = DYNAMICS x + CONTROL u. Its camera writes each state coordinate as a 24-bit
fixed-point number into one pixel's three channels, so encode() recovers the state to
about 1e-7 and the model is exact: planning on it has a known optimum.
"""
from __future__ import annotations

import numpy as np
import pytest

DYNAMICS = np.array([[1, 0, 0.5, 0], [0, 1, 0, 0.5], [0, 0, 0.6, 0], [0, 0, 0, 0.6]], np.float32)
CONTROL = np.array([[0, 0], [0, 0], [0.25, 0], [0, 0.25]], np.float32)
RANGE = 2.0  # coordinates live in [-RANGE, RANGE]
LEVELS = 2**24 - 1


class LinearRuntime:
    image_shape = (1, 4, 3)
    action_dim = 2
    latent_dim = 4

    def __init__(self) -> None:
        self.imagine_calls = 0

    @staticmethod
    def render(states: np.ndarray) -> np.ndarray:
        """states float [B, 4] -> images uint8 [B, 1, 4, 3]."""
        code = np.round((np.clip(states, -RANGE, RANGE) + RANGE) / (2 * RANGE) * LEVELS).astype(np.int64)
        channels = np.stack([(code >> shift) & 255 for shift in (16, 8, 0)], axis=-1)
        return channels[:, None].astype(np.uint8)

    def encode(self, images: np.ndarray) -> np.ndarray:
        digits = images[:, 0].astype(np.int64)
        code = (digits[..., 0] << 16) | (digits[..., 1] << 8) | digits[..., 2]
        return (code / LEVELS * 2 * RANGE - RANGE).astype(np.float32)

    def initial_state(self, batch: int) -> dict[str, np.ndarray]:
        return {"latent": np.zeros((batch, 4), np.float32)}

    def observe(self, state, images, actions):
        return {"latent": self.encode(images)}  # the camera sees the whole state

    def imagine(self, state, actions):
        self.imagine_calls += 1
        latent = np.broadcast_to(state["latent"], (len(actions), 4))
        latents = []
        for step in range(actions.shape[1]):  # loop over H only, the population is batched
            latent = latent @ DYNAMICS.T + actions[:, step] @ CONTROL.T
            latents.append(latent)
        return np.stack(latents, axis=1).astype(np.float32)

    def imagine_vjp(self, state, actions):
        """Adjoint recursion: lambda_t = g_t + DYNAMICS^T lambda_(t+1); d/du_t = CONTROL^T lambda_t."""
        def vjp(latent_grads):
            adjoint, grads = np.zeros((len(actions), 4), np.float32), np.zeros_like(actions)
            for step in reversed(range(actions.shape[1])):
                adjoint = latent_grads[:, step] + adjoint @ DYNAMICS
                grads[:, step] = adjoint @ CONTROL
            return grads

        return self.imagine(state, actions), vjp

    def decode(self, latents):
        flat = latents.reshape(-1, 4)
        return self.render(flat).reshape(*latents.shape[:-1], *self.image_shape)

    def latent(self, state):
        return state["latent"]


def step_true_system(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    return DYNAMICS @ state + CONTROL @ action


@pytest.fixture
def linear_runtime() -> LinearRuntime:
    return LinearRuntime()
