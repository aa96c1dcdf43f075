"""Train the temporal-distance model from a dataset's time offsets, in a world model's latent space.

1. Latents (`episode_latents`): every episode is filtered with the world model
   (ModelRuntime.observe) and every frame is also encoded alone (ModelRuntime.encode).
   The two sides of a pair come from where the planner takes them: the start side from
   filtered beliefs or from latents *imagined* from a belief a few steps earlier with the
   executed actions (what a plan's rollout produces), the target side from encode()
   (how a goal image is embedded).
2. Pairs: (t, t + k) of one episode, offset k; and random pairs of any two frames.
3. Loss, on the metric model's uncapped distance d (a learned isometric embedding, in the
   spirit of maximum variance unfolding / Laplacian eigenmaps):
   - local isometry: d = k for short offsets (k <= local_steps), where an exploration
     trajectory is close to the shortest path; squared error in steps and in log(1 + steps),
     the latter so that the last few steps to a goal stay resolved;
   - upper bound: d <= k for every offset up to upper_steps: a trajectory is *a* path, so
     its length bounds the shortest one from above (exploration wanders; never regress to k);
   - repulsion: random pairs pushed toward K_max by a small hinge. The local terms make the
     embedding roughly 1-Lipschitz along trajectories, so spreading it out stretches every
     distance up to, but (by the triangle inequality) not beyond, the length of the shortest
     chain of short hops: the geodesic, around walls included.
   Measured on runs/maze-easy held-out episodes (Spearman with the true ball distance over
   3000 random pairs): raw latent distance 0.34, the former MLP on pairs with expectile
   regression 0.10, this model 0.97 (docs/planning.md).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from hvp.config import Config, require
from hvp.contracts import ModelRuntime, encode_in_chunks, filter_episodes
from hvp.data import TrajectoryDataset
from hvp.models.temporal_distance import TemporalDistanceConfig, TemporalDistanceNet, TorchDistance, save_distance

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


@dataclasses.dataclass(frozen=True)
class DistanceTrainConfig(Config):
    """How pairs are drawn and the network is optimized."""

    steps: int = 3000  # optimizer updates
    batch_size: int = 256  # pairs per update and per loss term
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # AdamW
    local_steps: int = 4  # offsets up to this are taken as the shortest path (local isometry)
    upper_steps: int = 60  # offsets up to this bound the distance from above
    log_weight: float = 5.0  # weight of the local error in log(1 + steps) beside the error in steps
    upper_weight: float = 1.0  # weight of the upper-bound hinge
    repulsion_weight: float = 0.1  # weight of the hinge pushing random pairs toward K_max (0.3 tore the map apart)
    imagined_fraction: float = 0.5  # share of start latents imagined from an earlier belief instead of filtered
    imagine_horizon: int = 10  # furthest imagination (the planner's H)
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "local_steps", "imagine_horizon"):
            require(getattr(self, name) >= 1, "DistanceTrainConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        require(self.upper_steps >= self.local_steps, "DistanceTrainConfig.upper_steps must be >= local_steps "
                "(got {} < {})", self.upper_steps, self.local_steps)
        require(self.learning_rate > 0, "DistanceTrainConfig.learning_rate must be > 0 (got {})", self.learning_rate)
        for name in ("weight_decay", "log_weight", "upper_weight", "repulsion_weight"):
            require(getattr(self, name) >= 0, "DistanceTrainConfig.{} must be >= 0 (got {})", name,
                    getattr(self, name))
        require(0 <= self.imagined_fraction < 1, "DistanceTrainConfig.imagined_fraction must be in [0, 1) (got {})",
                self.imagined_fraction)


DistanceTrainConfig.PRESETS = {"debug": dict(steps=600, batch_size=128, learning_rate=3e-3, upper_steps=20,
                                             imagine_horizon=5),
                               "cpu": {}, "gpu": dict(steps=20_000, batch_size=1024)}


@dataclasses.dataclass(frozen=True)
class EpisodeLatents:
    """All episodes' latents, flattened over frames F (episode after episode)."""

    filtered: np.ndarray  # float32 [F, D]: belief latent after filtering frames 0..t
    encoded: np.ndarray  # float32 [F, D]: encode() of frame t alone
    imagined: np.ndarray  # float32 [F, J, D]: latent of frame t + j + 1 imagined from the belief at t (j < J)
    episode: np.ndarray  # int64 [F]: episode index of each frame
    starts: np.ndarray  # int64 [E]: first flat index of each episode
    lengths: np.ndarray  # int64 [E]: frames per episode

    @property
    def frames(self) -> int:
        return len(self.filtered)

    def observed(self) -> np.ndarray:
        """float32 [2F, D]: the filtered and the encoded latents, what the small models normalize on."""
        return np.concatenate([self.filtered, self.encoded])


def episode_latents(runtime: ModelRuntime, episodes: Sequence[dict[str, np.ndarray]], imagine_horizon: int,
                    chunk: int = 1024) -> EpisodeLatents:
    """Filter, encode and imagine every frame of `episodes` (hvp.data layout: "image" uint8 [T, h, w, 3],
    "action" float32 [T, A], action t follows frame t)."""
    beliefs, index = filter_episodes(runtime, episodes)
    episode = index[:, 0]
    filtered = runtime.latent(beliefs)
    flat_images = np.concatenate([e["image"] for e in episodes])
    encoded = encode_in_chunks(runtime, flat_images, chunk)
    # imagine with the executed actions t .. t + J - 1; rows running past an episode's end are never sampled
    padded = [np.concatenate([e["action"], np.zeros((imagine_horizon, e["action"].shape[1]))]).astype(np.float32)
              for e in episodes]
    windows = np.stack([padded[e][t:t + imagine_horizon] for e, t in index])  # [F, J, A]
    imagined = np.concatenate([
        runtime.imagine({key: value[i:i + chunk] for key, value in beliefs.items()}, windows[i:i + chunk])
        for i in range(0, len(windows), chunk)])
    lengths = np.bincount(episode, minlength=len(episodes))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return EpisodeLatents(filtered.astype(np.float32), encoded.astype(np.float32), imagined.astype(np.float32),
                          episode, starts.astype(np.int64), lengths.astype(np.int64))


def sample_pairs(latents: EpisodeLatents, rng: np.random.Generator, batch: int, max_offset: int,
                 imagined_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (t, t + k) of one episode, k uniform in [0, max_offset] (shorter where the episode is)
    -> (start latents float32 [B, D], target latents float32 [B, D], offsets in steps float32 [B])."""
    episodes = rng.integers(len(latents.lengths), size=batch)
    lengths = latents.lengths[episodes]
    offsets = np.minimum(rng.integers(0, max_offset + 1, size=batch), lengths - 1)
    t = (rng.random(batch) * (lengths - offsets)).astype(np.int64)
    start = latents.starts[episodes] + t
    return start_latents(latents, rng, start, imagined_fraction), latents.encoded[start + offsets], \
        offsets.astype(np.float32)


def random_pairs(latents: EpisodeLatents, rng: np.random.Generator, batch: int,
                 imagined_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Any two frames, of any episodes -> (start latents float32 [B, D], target latents float32 [B, D])."""
    start, target = rng.integers(latents.frames, size=(2, batch))
    return start_latents(latents, rng, start, imagined_fraction), latents.encoded[target]


def start_latents(latents: EpisodeLatents, rng: np.random.Generator, frames: np.ndarray,
                  imagined_fraction: float) -> np.ndarray:
    """The start side of pairs at flat frame indices [B]: the filtered belief, or with probability
    `imagined_fraction` the same frame imagined j + 1 steps ahead from the belief at t - j - 1 (as in a plan)."""
    t = frames - latents.starts[latents.episode[frames]]
    lead = np.minimum(rng.integers(1, latents.imagined.shape[1] + 1, size=len(frames)), t)
    use = (rng.random(len(frames)) < imagined_fraction) & (lead >= 1)
    imagined = latents.imagined[frames - lead, np.maximum(lead - 1, 0)]
    return np.where(use[:, None], imagined, latents.filtered[frames])


def metric_loss(net: TemporalDistanceNet, latents: EpisodeLatents, rng: np.random.Generator,
                train: DistanceTrainConfig) -> torch.Tensor:
    """Local isometry + upper bound by offsets + repulsion of random pairs (module docstring, step 3)."""
    def distance(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
        return net.uncapped_steps(torch.from_numpy(a), torch.from_numpy(b))

    # local isometry
    a, b, offsets = sample_pairs(latents, rng, train.batch_size, train.local_steps, train.imagined_fraction)
    near, steps = distance(a, b), torch.from_numpy(offsets)
    local = ((near - steps) ** 2).mean() + train.log_weight * ((torch.log1p(near) - torch.log1p(steps)) ** 2).mean()
    # upper bound: an episode's offset is the length of one path between its frames
    a, b, offsets = sample_pairs(latents, rng, train.batch_size, train.upper_steps, train.imagined_fraction)
    upper = torch.relu(distance(a, b) - torch.from_numpy(offsets)).pow(2).mean()
    # repulsion toward K_max
    a, b = random_pairs(latents, rng, train.batch_size, train.imagined_fraction)
    repulsion = torch.relu(net.config.max_steps - distance(a, b)).mean()
    return local + train.upper_weight * upper + train.repulsion_weight * repulsion


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of two float [M] arrays (ties broken by order; fine for continuous values)."""
    rank_x, rank_y = (np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(np.float64) for v in (x, y))
    return float(np.corrcoef(rank_x, rank_y)[0, 1])


def evaluate_distance(distance: TorchDistance, latents: EpisodeLatents, pairs: int = 2048,
                      seed: int = 0) -> dict[str, float]:
    """Spearman of predicted steps with true offsets on pairs within episodes (offsets 0..K_max) and the mean
    absolute error in steps; -> {"spearman", "mae_steps", "pairs"}. Offsets over-estimate far distances, so
    this scores the ordering along trajectories; bench/planning.py scores against true task-space distance."""
    rng = np.random.default_rng(seed)
    a, b, offsets = sample_pairs(latents, rng, pairs, distance.max_steps, imagined_fraction=0.0)
    predicted = distance.steps(a, b)
    return {"spearman": spearman(predicted, offsets), "mae_steps": float(np.mean(np.abs(predicted - offsets))),
            "pairs": pairs}


def fit_distance(latents: EpisodeLatents, model: TemporalDistanceConfig, train: DistanceTrainConfig,
                 progress: bool = True, on_log: Callable[[int, dict[str, float]], None] | None = None,
                 log_every: int = 100, threads: int = 1) -> TemporalDistanceNet:
    """Train a TemporalDistanceNet on pairs from `latents`; returns it in eval mode.

    One thread by default: the MLP is too small to gain from more, and on a busy 2-core
    machine two threads measured 10x slower per update (52 vs 4.6 ms) from contention.
    """
    net, rng = init_latent_model(latents.observed(), model, TemporalDistanceNet, train.seed, threads)
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    net.train()
    train_steps(lambda: metric_loss(net, latents, rng, train), optimizer, train.steps, "train distance",
                progress=progress, on_log=on_log, log_every=log_every)
    return net.eval()


def init_latent_model(normalization: np.ndarray, model: Any, build: Callable[[Any], ModuleT], seed: int,
                      threads: int) -> tuple[ModuleT, np.random.Generator]:
    """Start fitting a small model on latents: check model.latent_dim against the D of `normalization` (float32
    [M, D], the training latents), set torch's threads and seed, build(model) normalized to those latents ->
    (the net, numpy RNG seeded with `seed`)."""
    if model.latent_dim != normalization.shape[1]:
        raise ValueError(f"model.latent_dim: expected {normalization.shape[1]} (the latents' D), "
                         f"got {model.latent_dim}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build(model)
    net.set_normalization(torch.from_numpy(normalization))
    return net, rng


def train_steps(loss_fn: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer, steps: int, desc: str, *,
                progress: bool = True, on_log: Callable[[int, dict[str, float]], None] | None = None,
                log_every: int = 100) -> None:
    """`steps` updates of `optimizer` on the scalar `loss_fn()` (which samples its own batch), learning rate
    cosine-annealed to 0; every `log_every` steps on_log(step, {"loss": mean since the last log, "wall_s"}).
    The loop of the small latent-space models (temporal distance, subgoal generator)."""
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    started, running = time.perf_counter(), 0.0
    for step in tqdm(range(1, steps + 1), desc=desc, unit="step", disable=not progress):
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running += loss.item()
        if on_log is not None and step % log_every == 0:
            on_log(step, {"loss": running / log_every, "wall_s": time.perf_counter() - started})
            running = 0.0


def train_distance(run_dir: str | Path, dataset: TrajectoryDataset, out: str | Path | None = None, *,
                   preset: str = "cpu", model_overrides: dict[str, Any] | None = None,
                   train_overrides: dict[str, Any] | None = None, held_out: float = 0.1, threads: int = 1,
                   progress: bool = True) -> tuple[TorchDistance, dict[str, Any]]:
    """Train the temporal-distance model of the world model in `run_dir` on `dataset` and save it to `out`
    (default RUN/distance) -> (the model, the record written to its config.json incl. held-out scores)."""
    from hvp.models.runtime import load_runtime

    started = time.perf_counter()
    runtime = load_runtime(str(run_dir), device="cpu", threads=threads)
    train = DistanceTrainConfig.preset(preset, **(train_overrides or {}))
    model = TemporalDistanceConfig.preset(preset, latent_dim=runtime.latent_dim, **(model_overrides or {}))
    fit_set, test_set = dataset.split(held_out, seed=train.seed) if held_out > 0 else (dataset, None)
    latents = episode_latents(runtime, fit_set.episodes, train.imagine_horizon)
    net = fit_distance(latents, model, train, progress=progress, threads=threads)
    distance = TorchDistance(net)
    scores = {"train": evaluate_distance(distance, latents, seed=train.seed)}
    if test_set is not None:
        scores["held_out"] = evaluate_distance(distance, episode_latents(runtime, test_set.episodes,
                                                                         train.imagine_horizon), seed=train.seed)
    record = {"train": train.to_dict(), "preset": preset, "world_model": str(run_dir), "scores": scores,
              "episodes": len(fit_set), "frames": latents.frames, "wall_s": time.perf_counter() - started}
    save_distance(out or Path(run_dir) / "distance", net, extra=record)
    return distance, record
