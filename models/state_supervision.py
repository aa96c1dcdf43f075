"""State-supervised imagination: train an RSSM so that its state readout reads the true state out of its rollouts.

The readout cost plans on `readout(imagined latent)`, the task's true state estimated from prior means rolled
open-loop from the belief. The ELBO never asks that those rollouts carry the state well: it reconstructs pixels,
where a small block is a few dozen of 4096, and matches one-step (or, with overshooting, d-step) priors in
latent space. This adds what the planner relies on, as a loss on the true states a simulated dataset records:

    weight * smooth-L1(readout(latent), true state), averaged over the filtered latents (posterior means) and the
    prior means rolled d = 1..horizon steps from each of them, every one against the true state of its frame.

Gradients reach the encoder, the transition, the prior and the readout itself; acting still sees images only.

    trainee = StateSupervised(rssm, load_readout("runs/push/readout").net, weight=1000, horizon=10)
    loss, metrics = trainee(images, actions, true_states)     # ELBO terms + metrics["state_loss"]
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hvp.models.readout import ReadoutTrainConfig
from hvp.models.rssm import RSSM


class StateSupervised(nn.Module):
    """An RSSM and its state readout trained together: forward(images, actions, states) -> (loss, metrics).

    `state_dims` leading dimensions of the state are supervised (0: all; push's yaw is seen only modulo 90
    degrees, so its cost reads the first 4)."""

    def __init__(self, rssm: RSSM, readout: nn.Module, weight: float, horizon: int, state_dims: int = 0) -> None:
        super().__init__()
        if weight <= 0 or horizon < 0 or state_dims < 0:
            raise ValueError(f"state supervision: expected weight > 0, horizon >= 0, state_dims >= 0, got weight "
                             f"{weight}, horizon {horizon}, state_dims {state_dims}")
        self.rssm, self.readout = rssm, readout
        self.weight, self.horizon, self.state_dims = weight, horizon, state_dims

    def forward(self, images: torch.Tensor, actions: torch.Tensor,
                states: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """images uint8 [B, L, h, w, 3], actions float32 [B, L, A], true states float [B, L, S] -> (loss, metrics)."""
        window = self.rssm.filter_window(images, actions)
        loss, metrics = self.rssm.elbo(window)
        states = states.float()
        if self.state_dims:
            states = states[..., :self.state_dims]
        state_loss = self.error(torch.cat([window.deters, window.post_mean], -1), states)
        for step, deter, mean, _ in self.rssm.open_loop(window.deters, window.post_mean, window.prev, self.horizon):
            state_loss = state_loss + self.error(torch.cat([deter, mean], -1), states[:, step:])
        state_loss = state_loss / (1 + min(self.horizon, images.shape[1] - 1))
        loss = loss + self.weight * state_loss
        return loss, {**metrics, "loss": loss.detach(), "state_loss": state_loss.detach()}

    def error(self, latents: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Mean smooth-L1 between the readout of latents [B, T, D] and true states [B, T, S']."""
        estimates = self.readout(latents.flatten(0, 1)).unflatten(0, latents.shape[:2])[..., :states.shape[-1]]
        return F.smooth_l1_loss(estimates, states, beta=ReadoutTrainConfig.huber_delta)  # as the readout's own fit
