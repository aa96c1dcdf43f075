"""Building blocks shared by the world models: image scaling, conv encoder/decoder, an exportable GRU cell."""
from __future__ import annotations

import torch
from torch import nn

from hvp.models.config import FOREGROUND_REFERENCES

CONV_LAYERS = 4  # stride-2 convs: a 64x64 image becomes a 4x4 feature map


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 [..., h, w, 3] -> float32 [..., 3, h, w] in [-0.5, 0.5]."""
    return images.movedim(-1, -3).float() / 255.0 - 0.5


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """float32 [..., 3, h, w] in [-0.5, 0.5] -> uint8 [..., h, w, 3] (clipped)."""
    return ((images.movedim(-3, -1) + 0.5).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)


def foreground_weights(images: torch.Tensor, weight: float, threshold: float, reference: str = "window") -> torch.Tensor:
    """Per-pixel loss weights: `weight` where a frame differs from the background, else 1.

    images float32 [B, L, 3, h, w] -> float32 [B, L, 1, h, w], so the decoder cannot settle for drawing only the
    static scene. The background is the per-pixel median over each window (`reference="window"`: up-weights what
    moves in it, the ball) or over every frame of the batch (`"batch"`: the empty scene when windows come from many
    episodes, so an object that rests through a window, the push block, is up-weighted too).
    """
    if reference == "window":
        background = images.median(dim=1, keepdim=True).values
    elif reference == "batch":
        background = images.flatten(0, 1).median(dim=0).values
    else:
        raise ValueError(f"reference must be one of {FOREGROUND_REFERENCES} (got {reference!r})")
    moving = (images - background).abs().sum(dim=2, keepdim=True) > threshold
    return 1.0 + (weight - 1.0) * moving.float()


class LatentNormalized(nn.Module):
    """Base of the small latent-space networks: world-model latents have unequal scales per dimension, so
    inputs are standardized with the training data's per-dimension mean and std (buffers, saved with the weights)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_std", torch.ones(latent_dim))

    def set_normalization(self, latents: torch.Tensor) -> None:
        """latents float32 [M, D] of the training data -> per-dimension mean and std used on every input."""
        self.latent_mean.copy_(latents.mean(0))
        self.latent_std.copy_(latents.std(0).clamp(min=1e-3))

    def normalize(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents - self.latent_mean) / self.latent_std


class ConvEncoder(nn.Module):
    """images float32 [B, 3, h, w] -> embeddings float32 [B, E], E = 8 * depth * h/16 * w/16."""

    def __init__(self, image_size: tuple[int, int], depth: int) -> None:
        super().__init__()
        layers, channels = [], 3
        for layer in range(CONV_LAYERS):
            layers += [nn.Conv2d(channels, depth * 2 ** layer, 4, stride=2, padding=1), nn.ELU()]
            channels = depth * 2 ** layer
        self.net = nn.Sequential(*layers, nn.Flatten())
        scale = 2 ** CONV_LAYERS
        self.output_dim = channels * (image_size[0] // scale) * (image_size[1] // scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ConvDecoder(nn.Module):
    """features float32 [B, F] -> images float32 [B, 3, h, w] (mean of a unit-variance Gaussian).

    With `background`, the convs draw a residual on a learned per-pixel image (started from the data's median by
    set_background), so the static scene costs nothing to draw and the convs spend their capacity on the objects.
    """

    def __init__(self, feature_dim: int, image_size: tuple[int, int], depth: int, background: bool = False) -> None:
        super().__init__()
        self.background = nn.Parameter(torch.zeros(3, *image_size)) if background else None
        scale = 2 ** CONV_LAYERS
        channels = depth * 2 ** (CONV_LAYERS - 1)
        self.project = nn.Linear(feature_dim, channels * (image_size[0] // scale) * (image_size[1] // scale))
        self.grid = (channels, image_size[0] // scale, image_size[1] // scale)
        layers = []
        for layer in reversed(range(CONV_LAYERS)):
            out = 3 if layer == 0 else depth * 2 ** (layer - 1)
            layers.append(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1))
            if layer:
                layers.append(nn.ELU())
            channels = out
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        images = self.net(self.project(features).unflatten(-1, self.grid))
        return images if self.background is None else images + self.background

    @torch.no_grad()
    def set_background(self, frames: torch.Tensor) -> None:
        """frames float32 [N, 3, h, w] from many episodes -> the learned background starts at their per-pixel
        median (the empty scene)."""
        if self.background is None:
            raise ValueError("set_background: this decoder was built without a learned background")
        if tuple(frames.shape[1:]) != tuple(self.background.shape):
            raise ValueError(f"frames: expected [N, {', '.join(map(str, self.background.shape))}], got "
                             f"{list(frames.shape)}")
        self.background.copy_(frames.median(dim=0).values)


class ReferenceBlend(nn.Module):
    """Draws a predicted frame on a reference frame (the last one observed): where the two agree, the reference's
    sharp pixels; where they differ (an object moved to or from there), the prediction's.

    drawn, reference float32 [N, 3, h, w] -> float32 [N, 3, h, w]. A per-pixel mask from two small 3x3 convs over
    both frames and their difference: a decoder that must redraw every frame from its latent blurs a resting
    object, which the reference holds exactly (docs/world_model.md, "Drawing on the last observed frame").
    """

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.mask = nn.Sequential(nn.Conv2d(9, hidden, 3, padding=1), nn.ELU(), nn.Conv2d(hidden, 1, 3, padding=1))

    def forward(self, drawn: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        keep_drawn = torch.sigmoid(self.mask(torch.cat([drawn, reference, (drawn - reference).abs()], 1)))
        return keep_drawn * drawn + (1.0 - keep_drawn) * reference


class GRUCell(nn.Module):
    """A GRU cell from two Linear layers (torch.nn.GRUCell's equations), so ONNX export is plain MatMul/Sigmoid/Tanh.

    inputs float32 [B, I], state float32 [B, H] -> new state float32 [B, H].
    """

    def __init__(self, input_dim: int, state_dim: int) -> None:
        super().__init__()
        self.input_gates = nn.Linear(input_dim, 3 * state_dim)
        self.state_gates = nn.Linear(state_dim, 3 * state_dim)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        input_reset, input_update, input_new = self.input_gates(inputs).chunk(3, dim=-1)
        state_reset, state_update, state_new = self.state_gates(state).chunk(3, dim=-1)
        reset = torch.sigmoid(input_reset + state_reset)
        update = torch.sigmoid(input_update + state_update)
        candidate = torch.tanh(input_new + reset * state_new)
        return (1.0 - update) * candidate + update * state


def layer_norm_mlp(width_in: int, hidden: int, depth: int, width_out: int) -> nn.Sequential:
    """`depth` hidden layers of Linear, LayerNorm, SiLU, then a linear output: the small latent-space networks."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width_in, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        width_in = hidden
    return nn.Sequential(*layers, nn.Linear(width_in, width_out))


def mlp(input_dim: int, hidden_dim: int, output_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ELU(), nn.Linear(hidden_dim, output_dim))
