"""Learned temporal distance: predicted control steps between two planning latents.

Raw latent distance only ranks states that are close (REFERENCES.md's probe: Spearman
0.96 under a quarter of the arena, 0.22 overall), so planners need a cost that keeps
meaning far from the goal. This network embeds each latent of the world model and
reads the number of control steps between two of them as the Euclidean distance of
their embeddings, capped at `max_steps` (K_max):

    steps(a, b) = min(||phi(a) - phi(b)||, K_max)

A metric rather than a free network on pairs: it is symmetric, obeys the triangle
inequality (a plan through a reachable midpoint is never dearer than the parts), and
each latent is embedded alone, so it generalizes to pairs never seen together (a free
MLP on [a, b, a - b] overfit: held-out Spearman with the true distance 0.10).

    net = TemporalDistanceNet(TemporalDistanceConfig(latent_dim=160))
    distance = TorchDistance(net)                  # hvp.contracts.Distance, numpy in and out
    steps = distance.steps(latents_a, latents_b)   # float32 [N, D], [N or 1, D] -> float32 [N]
    save_distance("runs/NAME/distance", net, extra={...}); load_distance("runs/NAME/distance")

On disk (safetensors + JSON, never pickle)::

    distance/config.json           {"format_version", "kind": "temporal_distance", "model": {...}, ...extra}
    distance/model.safetensors     weights and latent normalization; metadata repeats the model config
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hvp.config import Config, require
from hvp.contracts import Vjp, check_array, check_latent_pair
from hvp.models.checkpoint import load_small_model, save_small_model
from hvp.models.networks import LatentNormalized, layer_norm_mlp
from hvp.models.runtime import resolve_device

FORMAT_VERSION = 2  # 2: metric embedding (1 was an MLP on latent pairs)
KIND = "temporal_distance"


@dataclasses.dataclass(frozen=True)
class TemporalDistanceConfig(Config):
    """Network of the temporal-distance model; latent_dim comes from the world model."""

    latent_dim: int = 160  # D of the world model's planning latent
    hidden_dim: int = 256  # width of the embedding MLP's layers
    depth: int = 2  # hidden layers
    embed_dim: int = 32  # dimensions of the embedding whose Euclidean distance is the step count
    max_steps: int = 80  # K_max: predictions saturate here; training pushes unrelated pairs this far apart
    detour_hidden: int = 0  # width of the reachability detour MLP (models/reachability.py); 0: a pure metric

    def validate(self) -> None:
        for name in ("latent_dim", "hidden_dim", "depth", "embed_dim"):
            require(getattr(self, name) >= 1, "TemporalDistanceConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.detour_hidden >= 0, "TemporalDistanceConfig.detour_hidden must be >= 0 (got {}); 0 means none",
                self.detour_hidden)
        require(self.max_steps >= 2, "TemporalDistanceConfig.max_steps must be >= 2 (got {})", self.max_steps)


TemporalDistanceConfig.PRESETS = {"debug": dict(hidden_dim=32, embed_dim=8, max_steps=10), "cpu": {},
                                  "gpu": dict(hidden_dim=512, depth=3, embed_dim=64, max_steps=120)}


class TemporalDistanceNet(LatentNormalized):
    """Embedding MLP phi on normalized latents; steps(a, b) = min(||phi(a) - phi(b)|| + detour(a, b), K_max).

    The detour (a reachability model's, models/reachability.py) is a non-negative MLP on
    [phi(a), phi(b)], learned from the controller's outcomes: where the controller cannot
    go, the distance may exceed what any metric allows; without it, detour = 0.
    forward() returns log(1 + steps) (what the exporter and TorchDistance undo with
    expm1), so the network's output contract did not change with the architecture.
    """

    def __init__(self, config: TemporalDistanceConfig) -> None:
        super().__init__(config.latent_dim)
        self.config = config
        self.embedding = layer_norm_mlp(config.latent_dim, config.hidden_dim, config.depth, config.embed_dim)
        self.detour_net = None
        if config.detour_hidden:
            self.detour_net = nn.Sequential(nn.Linear(2 * config.embed_dim, config.detour_hidden), nn.SiLU(),
                                            nn.Linear(config.detour_hidden, 1))
            with torch.no_grad():  # start at ~0 extra steps: a fresh detour changes no prediction
                self.detour_net[-1].weight.mul_(0.01)
                self.detour_net[-1].bias.fill_(-6.0)

    def embed(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [N, D] -> embeddings [N, embed_dim], in control steps."""
        return self.embedding(self.normalize(latents))

    @staticmethod
    def _metric(embed_a: torch.Tensor, embed_b: torch.Tensor) -> torch.Tensor:
        return ((embed_a - embed_b).pow(2).sum(-1) + 1e-8).sqrt()  # the offset keeps the gradient finite at a == b

    def uncapped_steps(self, latents_a: torch.Tensor, latents_b: torch.Tensor) -> torch.Tensor:
        """latents_a [N, D], latents_b [N, D] (or broadcastable) -> ||phi(a) - phi(b)|| [N], not capped (training)."""
        return self._metric(self.embed(latents_a), self.embed(latents_b))

    def reach_steps(self, latents_a: torch.Tensor, latents_b: torch.Tensor) -> torch.Tensor:
        """The metric distance plus the detour (when there is one) [N], not capped: steps for the controller."""
        embed_a, embed_b = self.embed(latents_a), self.embed(latents_b)
        steps = self._metric(embed_a, embed_b)
        if self.detour_net is None:
            return steps
        pair = torch.cat(torch.broadcast_tensors(embed_a, embed_b), -1)
        # scaled so that a few units of pre-activation span the step range
        return steps + self.config.max_steps / 10 * nn.functional.softplus(self.detour_net(pair)).squeeze(-1)

    def forward(self, latents_a: torch.Tensor, latents_b: torch.Tensor) -> torch.Tensor:
        """latents_a [N, D], latents_b [N, D] (or broadcastable) -> log(1 + steps) float32 [N], steps <= K_max."""
        return torch.log1p(self.reach_steps(latents_a, latents_b).clamp(max=self.config.max_steps))


class TorchDistance:
    """hvp.contracts.Distance over a TemporalDistanceNet: steps(a, b) -> float32 [N] in [0, K_max]."""

    def __init__(self, net: TemporalDistanceNet, device: str | torch.device | None = "cpu") -> None:
        if not isinstance(net, TemporalDistanceNet):
            raise TypeError(f"net: expected a TemporalDistanceNet, got {type(net).__name__}")
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.latent_dim = net.config.latent_dim
        self.max_steps = net.config.max_steps

    def _pair(self, latents_a: np.ndarray, latents_b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = check_latent_pair(latents_a, latents_b, self.latent_dim)
        return torch.from_numpy(a).to(self.device), torch.from_numpy(b).to(self.device)

    @torch.no_grad()
    def steps(self, latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
        """latents_a float32 [N, D], latents_b float32 [N, D] or [1, D] -> predicted control steps float32 [N]."""
        return torch.expm1(self.net(*self._pair(latents_a, latents_b))).cpu().numpy()

    def steps_vjp(self, latents_a: np.ndarray, latents_b: np.ndarray) -> tuple[np.ndarray, Vjp]:
        """steps() and its vector-Jacobian product: vjp(step_grads float32 [N]) -> float32 [N, D] w.r.t. latents_a.
        Zero where the prediction saturates at K_max: far from the target the plan gets no pull from here."""
        a, b = self._pair(latents_a, latents_b)
        a.requires_grad_(True)
        with torch.enable_grad():
            steps = torch.expm1(self.net(a, b))

        def vjp(step_grads: np.ndarray) -> np.ndarray:
            grads = check_array("step_grads", np.asarray(step_grads, np.float32), (len(a),), np.float32)
            (latent_grads,) = torch.autograd.grad(steps, a, torch.from_numpy(grads).to(self.device), retain_graph=True)
            return latent_grads.cpu().numpy()

        return steps.detach().cpu().numpy(), vjp


def save_distance(out_dir: str | os.PathLike, net: TemporalDistanceNet, extra: dict[str, Any] | None = None) -> Path:
    """Write config.json (model config + `extra`, e.g. training config and metrics) and model.safetensors."""
    return save_small_model(out_dir, KIND, FORMAT_VERSION, net, extra)


def load_distance(model_dir: str | os.PathLike, device: str | torch.device | None = "cpu") -> TorchDistance:
    """The TorchDistance saved in `model_dir` by save_distance (hvp train-distance). Never unpickles."""
    net, _ = load_small_model(model_dir, KIND, FORMAT_VERSION,
                              lambda model: TemporalDistanceNet(TemporalDistanceConfig.from_dict(model)),
                              train_hint="hvp train-distance RUN --data DATA.hdf5")
    return TorchDistance(net, device)
