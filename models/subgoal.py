"""Subgoal generator: a conditional VAE (HVF's baseline, 8-d code) over world-model planning latents.

Given a start latent s and a goal latent g it proposes the midpoint m; a code z float32 [C]
picks one of the many midpoints (around a wall on the left or on the right). Recursive
midpoints give a GCP-style tree of K = 2**L - 1 subgoals in time order::

    generator = load_subgoals("runs/NAME/subgoals")          # hvp.contracts.SubgoalGenerator
    chain = generator.propose(start, goal, codes)              # [D], [D], [N, K, C] -> [N, K, D]
    images = runtime.decode(chain[0])                          # what the subgoals look like

Training triples (t, t + k, t + 2k) of one episode, k sampled: start = the filtered belief
latent at t or encode() of frame t (inner tree nodes start from subgoals, which live in
encode() space), midpoint and goal = encode() of frames t + k and t + 2k (a goal image is
embedded by encode(), and the temporal distance scores targets in that space).

On disk (safetensors + JSON, never pickle): subgoals/config.json, subgoals/model.safetensors.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hvp.config import Config, require
from hvp.models.checkpoint import load_small_model, save_small_model
from hvp.models.fit_distance import EpisodeLatents, init_latent_model, train_steps
from hvp.models.networks import LatentNormalized, layer_norm_mlp
from hvp.subgoal_tree import recursive_midpoints

FORMAT_VERSION = 1
KIND = "subgoal_cvae"
SUBGOALS_DIR = "subgoals"  # where hvp train-subgoals puts the generator inside a run


@dataclasses.dataclass(frozen=True)
class SubgoalConfig(Config):
    """Network of the subgoal CVAE; latent_dim comes from the world model."""

    latent_dim: int = 160  # D of the world model's planning latent
    code_dim: int = 8  # C: the CVAE's latent code per subgoal (HVF: 8)
    hidden_dim: int = 256  # width of the MLP layers
    depth: int = 2  # hidden layers of encoder and decoder

    def validate(self) -> None:
        for name in ("latent_dim", "code_dim", "hidden_dim", "depth"):
            require(getattr(self, name) >= 1, "SubgoalConfig.{} must be >= 1 (got {})", name, getattr(self, name))


SubgoalConfig.PRESETS = {"debug": dict(hidden_dim=64, depth=1), "cpu": {}, "gpu": dict(hidden_dim=512, depth=3)}


@dataclasses.dataclass(frozen=True)
class SubgoalTrainConfig(Config):
    """How triples are drawn and the CVAE is optimized."""

    steps: int = 3000  # optimizer updates
    batch_size: int = 256  # triples per update
    learning_rate: float = 1e-3
    kl_weight: float = 0.05  # beta: small, so the code carries which way round an obstacle, not noise
    min_offset: int = 2  # k of a triple (t, t + k, t + 2k) is drawn from [min_offset, max_offset]
    max_offset: int = 40
    filtered_fraction: float = 0.5  # share of starts taken from filtered beliefs (the rest encode())
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "min_offset"):
            require(getattr(self, name) >= 1, "SubgoalTrainConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.max_offset >= self.min_offset, "SubgoalTrainConfig.max_offset must be >= min_offset={} (got {})",
                self.min_offset, self.max_offset)
        require(self.learning_rate > 0, "SubgoalTrainConfig.learning_rate must be > 0 (got {})", self.learning_rate)
        require(self.kl_weight >= 0, "SubgoalTrainConfig.kl_weight must be >= 0 (got {})", self.kl_weight)
        require(0 <= self.filtered_fraction <= 1, "SubgoalTrainConfig.filtered_fraction must be in [0, 1] (got {})",
                self.filtered_fraction)


SubgoalTrainConfig.PRESETS = {"debug": dict(steps=400, batch_size=128, learning_rate=3e-3), "cpu": {},
                              "gpu": dict(steps=20_000, batch_size=1024)}


class SubgoalCVAE(LatentNormalized):
    """q(z | s, g, m) and m = decoder(s, g, z), on normalized latents; the prior p(z) is N(0, I).

    The decoder predicts the midpoint as an offset from the straight average (s + g) / 2:
    in open space that is the answer, so the network only learns the detours.
    """

    def __init__(self, config: SubgoalConfig) -> None:
        super().__init__(config.latent_dim)
        self.config = config
        dim, code = config.latent_dim, config.code_dim
        self.posterior = layer_norm_mlp(3 * dim, config.hidden_dim, config.depth, 2 * code)
        self.decoder = layer_norm_mlp(2 * dim + code, config.hidden_dim, config.depth, dim)

    def decode_midpoint(self, start: torch.Tensor, goal: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """start, goal float32 [B, D] (raw latents), codes [B, C] -> midpoint latents float32 [B, D]."""
        s, g = self.normalize(start), self.normalize(goal)
        offset = self.decoder(torch.cat([s, g, codes], -1))
        return ((s + g) / 2 + offset) * self.latent_std + self.latent_mean

    def loss(self, start: torch.Tensor, middle: torch.Tensor, goal: torch.Tensor,
             kl_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO on normalized latents: reconstruction MSE + kl_weight * KL(q || N(0, I)) per code dim."""
        s, m, g = self.normalize(start), self.normalize(middle), self.normalize(goal)
        mean, log_std = self.posterior(torch.cat([s, m, g], -1)).chunk(2, -1)
        log_std = log_std.clamp(-5, 2)
        code = mean + torch.randn_like(mean) * log_std.exp()
        predicted = (s + g) / 2 + self.decoder(torch.cat([s, g, code], -1))
        reconstruction = ((predicted - m) ** 2).mean()
        kl = (0.5 * (mean**2 + (2 * log_std).exp() - 1) - log_std).sum(-1).mean() / self.config.code_dim
        return reconstruction + kl_weight * kl, {"reconstruction": reconstruction.item(), "kl": kl.item()}


class TorchSubgoalGenerator:
    """hvp.contracts.SubgoalGenerator over a SubgoalCVAE: numpy in and out, recursive midpoints."""

    def __init__(self, net: SubgoalCVAE, device: str | torch.device = "cpu") -> None:
        if not isinstance(net, SubgoalCVAE):
            raise TypeError(f"net: expected a SubgoalCVAE, got {type(net).__name__}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.code_dim = net.config.code_dim
        self.latent_dim = net.config.latent_dim

    @torch.no_grad()
    def midpoint(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [B, D], codes float32 [B, C] -> midpoint latents float32 [B, D]: one network call."""
        as_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)  # noqa: E731
        return self.net.decode_midpoint(as_tensor(start), as_tensor(goal), as_tensor(codes)).cpu().numpy()

    def propose(self, start: np.ndarray, goal: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """start, goal float32 [D]; codes float32 [N, K, C] (K = 1, 3, 7, ...) -> subgoal latents float32 [N, K, D]
        in time order (hvp.subgoal_tree: level by level, each level one batched network call)."""
        return recursive_midpoints(self.midpoint, start, goal, codes, self.latent_dim, self.code_dim)


# -- training ------------------------------------------------------------------------------------
def sample_triples(latents: EpisodeLatents, rng: np.random.Generator, batch: int, min_offset: int,
                   max_offset: int, filtered_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (start, midpoint, goal latents float32 [B, D]) of triples (t, t + k, t + 2k) within one episode."""
    usable = np.flatnonzero(latents.lengths > 2 * min_offset)
    if not len(usable):
        raise ValueError(f"latents: no episode is longer than 2 * min_offset = {2 * min_offset} frames")
    episodes = usable[rng.integers(len(usable), size=batch)]
    lengths = latents.lengths[episodes]
    longest = np.minimum(max_offset, (lengths - 1) // 2)
    offsets = rng.integers(min_offset, longest + 1)
    t = (rng.random(batch) * (lengths - 2 * offsets)).astype(np.int64)
    start = latents.starts[episodes] + t
    filtered = rng.random(batch) < filtered_fraction
    start_latents = np.where(filtered[:, None], latents.filtered[start], latents.encoded[start])
    return start_latents, latents.encoded[start + offsets], latents.encoded[start + 2 * offsets]


def midpoint_error(generator: TorchSubgoalGenerator, latents: EpisodeLatents, triples: int = 1024,
                   seed: int = 0, samples: int = 8) -> dict[str, float]:
    """How near proposals land to the true midpoint, normalized latent RMSE: the best of `samples` prior codes,
    the straight average (s + g) / 2, and a random other frame; -> {"best_of_codes", "average", "random_frame"}."""
    rng = np.random.default_rng(seed)
    start, middle, goal = sample_triples(latents, rng, triples, 2, 40, filtered_fraction=0.0)
    std = generator.net.latent_std.cpu().numpy()
    rmse = lambda a, b: np.sqrt(np.mean(((a - b) / std) ** 2, axis=-1))  # noqa: E731
    best = np.full(triples, np.inf)
    for index in range(triples):
        codes = rng.standard_normal((samples, 1, generator.code_dim)).astype(np.float32)
        best[index] = rmse(generator.propose(start[index], goal[index], codes)[:, 0], middle[index]).min()
    random_frame = latents.encoded[rng.integers(latents.frames, size=triples)]
    return {"best_of_codes": float(best.mean()), "average": float(rmse((start + goal) / 2, middle).mean()),
            "random_frame": float(rmse(random_frame, middle).mean())}


def fit_subgoals(latents: EpisodeLatents, model: SubgoalConfig, train: SubgoalTrainConfig, progress: bool = True,
                 on_log: Callable[[int, dict[str, float]], None] | None = None, log_every: int = 100,
                 threads: int = 1) -> SubgoalCVAE:
    """Train a SubgoalCVAE on triples from `latents`; returns it in eval mode (1 thread: the MLP is small)."""
    net, rng = init_latent_model(latents.observed(), model, SubgoalCVAE, train.seed, threads)
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate)

    def loss() -> torch.Tensor:
        triple = sample_triples(latents, rng, train.batch_size, train.min_offset, train.max_offset,
                                train.filtered_fraction)
        return net.loss(*(torch.from_numpy(part) for part in triple), train.kl_weight)[0]

    net.train()
    train_steps(loss, optimizer, train.steps, "train subgoals", progress=progress, on_log=on_log, log_every=log_every)
    return net.eval()


# -- files ---------------------------------------------------------------------------------------
def save_subgoals(out_dir: str | os.PathLike, net: SubgoalCVAE, extra: dict[str, Any] | None = None) -> Path:
    """Write config.json (model config + `extra`, e.g. training config and scores) and model.safetensors."""
    return save_small_model(out_dir, KIND, FORMAT_VERSION, net, extra)


def load_subgoals(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> TorchSubgoalGenerator:
    """The generator saved in `model_dir` by save_subgoals (hvp train-subgoals). Never unpickles."""
    net, _ = load_small_model(model_dir, KIND, FORMAT_VERSION,
                              lambda model: SubgoalCVAE(SubgoalConfig.from_dict(model)),
                              train_hint="hvp train-subgoals RUN --data DATA.hdf5")
    return TorchSubgoalGenerator(net, device)


def train_subgoals(run_dir: str | Path, dataset: Any, out: str | Path | None = None, *, preset: str = "cpu",
                   model_overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
                   held_out: float = 0.1, threads: int = 1,
                   progress: bool = True) -> tuple[TorchSubgoalGenerator, dict[str, Any]]:
    """Train the subgoal generator of the world model in `run_dir` on `dataset` (hvp.data.TrajectoryDataset) and
    save it to `out` (default RUN/subgoals) -> (generator, the record written to its config.json with scores)."""
    from hvp.models.fit_distance import episode_latents
    from hvp.models.runtime import load_runtime

    started = time.perf_counter()
    runtime = load_runtime(str(run_dir), device="cpu", threads=threads)
    train = SubgoalTrainConfig.preset(preset, **(train_overrides or {}))
    model = SubgoalConfig.preset(preset, latent_dim=runtime.latent_dim, **(model_overrides or {}))
    fit_set, test_set = dataset.split(held_out, seed=train.seed) if held_out > 0 else (dataset, None)
    latents = episode_latents(runtime, fit_set.episodes, imagine_horizon=1)
    net = fit_subgoals(latents, model, train, progress=progress, threads=threads)
    generator = TorchSubgoalGenerator(net)
    scores = {"train": midpoint_error(generator, latents, seed=train.seed)}
    if test_set is not None:
        scores["held_out"] = midpoint_error(generator, episode_latents(runtime, test_set.episodes, 1), seed=train.seed)
    record = {"train": train.to_dict(), "preset": preset, "world_model": str(run_dir), "scores": scores,
              "episodes": len(fit_set), "frames": latents.frames, "wall_s": time.perf_counter() - started}
    save_subgoals(out or Path(run_dir) / SUBGOALS_DIR, net, extra=record)
    return generator, record
