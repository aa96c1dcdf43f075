"""Building blocks shared by the world models: image scaling, conv encoder/decoder, an exportable GRU cell."""
from __future__ import annotations

import math

import torch
from torch import nn

from hvp.models.config import CONV_LAYERS, FOREGROUND_REFERENCES, KEYPOINT_LAYERS

# width of a drawn keypoint in [-1, 1] image units (about 1.3 cells of the 32x32 map it joins): narrow enough to
# place a 4-pixel pusher, wide enough that a point a few cells off still feels the loss's gradient
KEYPOINT_SIGMA = 1 / 12
# the spatial softmax's starting sharpness (scores times this; learned from there): over a mostly empty arena the
# scores are nearly equal, so at 1 every point sits at the centre and nothing teaches it to find an object (trained,
# the points' std stayed 0.005); at 100 an untrained encoder's points already follow the objects (std 0.18)
KEYPOINT_SHARPNESS = 100.0
# what a cell off the foreground takes from a point's score (after the sharpness): far below any score the 1x1 conv
# gives, and the same for every cell when none is foreground, so the softmax is then the plain one
OFF_FOREGROUND = 1e4
# the convs run on images and maps in channels-last layout, weights included: on a 2-core CPU (oneDNN) an update of
# the push recipe takes 383 ms against 430 ms in torch's default layout (bench/training_speed.py)
CONV_LAYOUT = torch.channels_last


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


def pixel_grid(height: int, width: int) -> torch.Tensor:
    """-> float32 [h * w, 2]: each cell's (x, y) centre in [-1, 1], row-major (x along the width)."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)


class SpatialSoftmax(nn.Module):
    """features float32 [B, C, h, w] -> K expected image points float32 [B, 2K] in [-1, 1] (deep spatial
    autoencoders): a 1x1 conv scores each cell, a softmax over the cells weighs their coordinates. A small object
    becomes two numbers linear in where it is, which a flattened conv map is not (docs/world_model.md, "Keypoints")."""

    def __init__(self, channels: int, keypoints: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, keypoints, 1)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(KEYPOINT_SHARPNESS)))
        self.register_buffer("grid", pixel_grid(*size), persistent=False)

    def weights(self, features: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
        """features float32 [B, C, h, w] -> each point's weights over the cells, float32 [B, K, h * w]; with `cells`
        float32 [B, 1, h, w] of 0 and 1, only the cells at 1 (when there are any) weigh."""
        scores = self.score(features).flatten(2) * self.log_sharpness.exp()
        if cells is not None:
            scores = scores + (cells.flatten(2) - 1.0) * OFF_FOREGROUND
        return torch.softmax(scores, -1)

    def forward(self, features: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
        return (self.weights(features, cells) @ self.grid).flatten(1)


def scene_median(frames: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """frames float32 [N, *shape] from many episodes -> their per-pixel median [*shape]: the empty scene."""
    if tuple(frames.shape[1:]) != tuple(shape):
        raise ValueError(f"frames: expected [N, {', '.join(map(str, shape))}], got {list(frames.shape)}")
    return frames.median(dim=0).values


class ConvEncoder(nn.Module):
    """images float32 [B, 3, h, w] -> embeddings float32 [B, E], E = 8 * depth * h/16 * w/16 (+ 2 * keypoints: the
    spatial-softmax points of the map after `keypoint_layers` convs, appended).

    With `foreground_threshold`, the points are found only among the map's cells where the image differs from the
    empty scene (a buffer, set by set_point_background) by more than it: no point can settle on the static arena,
    so which objects the points follow is no longer left to the seed (docs/world_model.md, "Points on the
    foreground")."""

    def __init__(self, image_size: tuple[int, int], depth: int, keypoints: int = 0,
                 keypoint_layers: int = KEYPOINT_LAYERS, foreground_threshold: float | None = None) -> None:
        super().__init__()
        layers, channels = [], 3
        for layer in range(CONV_LAYERS):
            layers += [nn.Conv2d(channels, depth * 2 ** layer, 4, stride=2, padding=1), nn.ELU()]
            channels = depth * 2 ** layer
        self.net = nn.Sequential(*layers, nn.Flatten())
        scale = 2 ** CONV_LAYERS
        self.output_dim = channels * (image_size[0] // scale) * (image_size[1] // scale) + 2 * keypoints
        self.keypoint_layers = keypoint_layers
        map_size = (image_size[0] // 2 ** keypoint_layers, image_size[1] // 2 ** keypoint_layers)
        self.keypoints = SpatialSoftmax(depth * 2 ** (keypoint_layers - 1), keypoints, map_size) if keypoints else None
        self.foreground_threshold = foreground_threshold if keypoints else None
        if self.foreground_threshold is not None:
            self.register_buffer("point_background", torch.zeros(3, *image_size))
        self.to(memory_format=CONV_LAYOUT)

    def point_map(self, images: torch.Tensor) -> torch.Tensor:
        """images float32 [B, 3, h, w] -> the conv map the keypoints are found on, [B, C, h', w']."""
        return self.net[:2 * self.keypoint_layers](images.contiguous(memory_format=CONV_LAYOUT))  # a conv, an ELU each

    def foreground_cells(self, images: torch.Tensor) -> torch.Tensor | None:
        """images float32 [B, 3, h, w] -> float32 [B, 1, h', w']: 1 where a cell of the point map holds a pixel
        that differs from the empty scene, else 0; None without a foreground threshold."""
        if self.foreground_threshold is None:
            return None
        moving = ((images - self.point_background).abs().sum(1, keepdim=True) > self.foreground_threshold).float()
        return nn.functional.max_pool2d(moving, 2 ** self.keypoint_layers)

    def point_weights(self, images: torch.Tensor) -> torch.Tensor:
        """images float32 [B, 3, h, w] -> each keypoint's weights over the map's cells, float32 [B, K, h' * w']."""
        return self.keypoints.weights(self.point_map(images), self.foreground_cells(images))

    def points(self, images: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """images float32 [B, 3, h, w] (and their point map, when already computed) -> the keypoints [B, 2K]."""
        features = self.point_map(images) if features is None else features
        return self.keypoints(features, self.foreground_cells(images))

    @torch.no_grad()
    def set_point_background(self, frames: torch.Tensor) -> None:
        """frames float32 [N, 3, h, w] from many episodes -> the empty scene the foreground is found against."""
        if self.foreground_threshold is None:
            raise ValueError("set_point_background: this encoder finds its points without a foreground")
        self.point_background.copy_(scene_median(frames, self.point_background.shape))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.keypoints is None:
            return self.net(images.contiguous(memory_format=CONV_LAYOUT))
        features = self.point_map(images)
        return torch.cat([self.net[2 * self.keypoint_layers:](features), self.points(images, features)], -1)


class ConvDecoder(nn.Module):
    """features float32 [B, F] -> images float32 [B, 3, h, w] (mean of a unit-variance Gaussian).

    With `background`, the convs draw a residual on a learned per-pixel image (started from the data's median by
    set_background), so the static scene costs nothing to draw and the convs spend their capacity on the objects.
    With `keypoints` K, a linear head reads K image points from the features and draws each as a Gaussian bump
    on the map the last transposed conv paints from: a small object is placed where a point says, not smeared by
    the coarse 4x4 start (docs/world_model.md, "Keypoints"). With `robot_dims` (start, stop), the features' slice
    holding the robot's own state, a second linear head reads K more points from that slice alone and draws them
    too: where the robot is seen follows from its state, which the rollout carries precisely, while the first
    head's points carry the cell-sized steps of the encoder's (docs/world_model.md, "The robot drawn from its state").
    With `point_dims` (start, stop), the features' slice holding the K points themselves (the RSSM's point dynamics),
    the bumps are drawn there and no head reads them.
    """

    def __init__(self, feature_dim: int, image_size: tuple[int, int], depth: int, background: bool = False,
                 keypoints: int = 0, robot_dims: tuple[int, int] | None = None,
                 point_dims: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.background = nn.Parameter(torch.zeros(3, *image_size)) if background else None
        scale = 2 ** CONV_LAYERS
        channels = depth * 2 ** (CONV_LAYERS - 1)
        self.project = nn.Linear(feature_dim, channels * (image_size[0] // scale) * (image_size[1] // scale))
        self.grid = (channels, image_size[0] // scale, image_size[1] // scale)
        self.robot_dims = robot_dims if keypoints else None
        self.point_dims = point_dims if keypoints else None
        self.bumps = bumps = keypoints * (2 if self.robot_dims else 1)
        layers = []
        for layer in reversed(range(CONV_LAYERS)):
            out = 3 if layer == 0 else depth * 2 ** (layer - 1)
            layers.append(nn.ConvTranspose2d(channels + (bumps if layer == 0 else 0), out, 4, stride=2, padding=1))
            if layer:
                layers.append(nn.ELU())
            channels = out
        self.net = nn.Sequential(*layers)
        self.keypoint_head = nn.Linear(feature_dim, 2 * keypoints) if keypoints and not self.point_dims else None
        self.robot_point_head = nn.Linear(robot_dims[1] - robot_dims[0], 2 * keypoints) if self.robot_dims else None
        self.map_size = (image_size[0] // 2, image_size[1] // 2)  # what the last transposed conv paints from
        if keypoints:
            self.register_buffer("map_grid", pixel_grid(*self.map_size), persistent=False)
        self.to(memory_format=CONV_LAYOUT)

    def keypoints(self, features: torch.Tensor) -> torch.Tensor:
        """features float32 [B, F] -> the points it draws, float32 [B, K, 2] as (x, y) in [-1, 1]."""
        return torch.tanh(self.keypoint_head(features)).unflatten(-1, (-1, 2))

    def robot_points(self, robot: torch.Tensor) -> torch.Tensor:
        """The robot's state float32 [B, S] (as the features' robot_dims slice holds it) -> the points drawn from it,
        float32 [B, K, 2]: linear, so where the robot is seen is read from its state without the cells' steps."""
        return self.robot_point_head(robot).unflatten(-1, (-1, 2))

    def drawn_points(self, features: torch.Tensor) -> torch.Tensor:
        """features float32 [B, F] -> every point drawn as a bump, float32 [B, K or 2K, 2]."""
        if self.point_dims:
            return features[:, self.point_dims[0]:self.point_dims[1]].unflatten(-1, (-1, 2))
        points = self.keypoints(features)
        if self.robot_dims is None:
            return points
        # the robot state is trained by its own tie; the image loss only teaches this head where the robot is seen
        robot = features[:, self.robot_dims[0]:self.robot_dims[1]].detach()
        return torch.cat([points, self.robot_points(robot)], 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.project(features).unflatten(-1, self.grid).contiguous(memory_format=CONV_LAYOUT)
        if not self.bumps:
            images = self.net(maps)
        else:
            distance = ((self.map_grid - self.drawn_points(features)[:, :, None]) ** 2).sum(-1)  # [B, K, h/2 * w/2]
            bumps = torch.exp(-distance / (2 * KEYPOINT_SIGMA ** 2)).unflatten(-1, self.map_size)
            bumps = bumps.contiguous(memory_format=CONV_LAYOUT)
            images = self.net[-1](torch.cat([self.net[:-1](maps), bumps], 1))
        return images if self.background is None else images + self.background

    @torch.no_grad()
    def set_background(self, frames: torch.Tensor) -> None:
        """frames float32 [N, 3, h, w] from many episodes -> the learned background starts at their per-pixel
        median (the empty scene)."""
        if self.background is None:
            raise ValueError("set_background: this decoder was built without a learned background")
        self.background.copy_(scene_median(frames, self.background.shape))


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
        self.to(memory_format=CONV_LAYOUT)

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
