"""A small action-conditioned video predictor in pixel space: the observation-space baseline.

In the spirit of SV2P's deterministic core (without its stochastic latent or CDNA kernels):
a conv U-Net reads the last two frames (velocity is visible in their difference), adds the
action at the bottleneck, and predicts the change to the last frame. It is trained open loop
on its own predictions, as it is evaluated.

Why a residual and not SV2P's mask compositing (mask * last + (1 - mask) * generated): the
masked version collapsed to copying the last frame within 100 updates on maze-easy (the
sigmoid mask saturated at 1, the gradient norm fell from 1252 to 0.005 and the loss never
moved again; it then scored exactly copy-last). A linear residual has no saturating gate, so
"no change" is a point the gradient can leave.
"""
from __future__ import annotations

import torch
from torch import nn

from hvp.models.config import PixelConfig
from hvp.models.networks import foreground_weights, to_float_images

LEVELS = 3  # stride-2 stages of the U-Net


class PixelPredictor(nn.Module):
    def __init__(self, config: PixelConfig) -> None:
        super().__init__()
        self.config = config
        depth = config.conv_depth
        widths = [depth * 2 ** level for level in range(LEVELS)]
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(6 if level == 0 else widths[level - 1], widths[level], 4, 2, 1), nn.ELU())
            for level in range(LEVELS))
        self.action_layer = nn.Linear(config.action_dim, widths[-1])
        # up stage k reads the previous stage's output concatenated with the matching skip connection
        ups = []
        for level in reversed(range(LEVELS)):
            in_channels = widths[level] * (1 if level == LEVELS - 1 else 2)
            out_channels = 3 if level == 0 else widths[level - 1]
            layer = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1)
            ups.append(layer if level == 0 else nn.Sequential(layer, nn.ELU()))
        self.up = nn.ModuleList(ups)
        with torch.no_grad():  # the residual starts at zero: training starts from copy-last-frame, not from noise
            self.up[-1].weight.zero_()
            self.up[-1].bias.zero_()

    def step(self, previous: torch.Tensor, current: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """frames float32 [B, 3, h, w] at t-1 and t, action float32 [B, A] -> frame t+1 float32 [B, 3, h, w]."""
        skips, x = [], torch.cat([previous, current], 1)
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = x + self.action_layer(action)[:, :, None, None]
        for index, layer in enumerate(self.up):
            x = layer(x if index == 0 else torch.cat([x, skips[LEVELS - 1 - index]], 1))
        return current + x

    def rollout(self, previous: torch.Tensor, current: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Open loop on its own outputs: frames [B, 3, h, w], actions [B, H, A] -> frames float32 [B, H, 3, h, w]."""
        predictions = []
        for t in range(actions.shape[1]):
            previous, current = current, self.step(previous, current, actions[:, t])
            predictions.append(current)
        return torch.stack(predictions, 1)

    def forward(self, images: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """images uint8 [B, L, h, w, 3], actions float32 [B, L, A] -> (loss, metrics): predict frames 2.. from 0, 1."""
        frames = to_float_images(images)
        predicted = self.rollout(frames[:, 0], frames[:, 1], actions[:, 1:-1])
        weights = foreground_weights(frames, self.config.foreground_weight, self.config.foreground_threshold)
        loss = ((predicted - frames[:, 2:]) ** 2 * weights[:, 2:]).sum((2, 3, 4)).mean()
        return loss, {"loss": loss.detach(), "reconstruction": loss.detach()}

    @torch.no_grad()
    def predict_video(self, images: torch.Tensor, actions: torch.Tensor, context: int) -> torch.Tensor:
        """images uint8 [B, L, h, w, 3], actions float32 [B, L, A] -> frames context.. float32 [B, L - context, 3, h, w]."""
        frames = to_float_images(images[:, :context])
        previous = frames[:, max(context - 2, 0)]
        return self.rollout(previous, frames[:, context - 1], actions[:, context - 1:-1])
