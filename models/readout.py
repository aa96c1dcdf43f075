"""State readout: an MLP from a world model's planning latent to the task's true low-dimensional state.

A goal image says where things should be; a task's `state_cost` (hvp.sim) says how far a
state is from that, in the task's own terms (for push: the block's distance to its goal and
the pusher's distance to the spot behind the block). The readout lets the planner use that
cost from pixels alone: it reads the state out of every imagined latent and out of the goal
image's encoding, and planners/costs.StateCost scores the estimates.

It is trained on the dataset's recorded `true_state` (simulation records it; a real-robot
dataset would need it measured), on the latents the planner really sees: filtered beliefs,
encode()d frames (the goal side) and latents imagined up to `imagine_horizon` steps ahead
with the executed actions (a plan's rollout). A linear probe is too coarse for planning
(push, checkpoints/push: block error 0.13 on held-out filtered latents against 0.035 for
this MLP; the task's success radius is 0.1).

    readout, record = train_readout("runs/push", dataset)        # -> runs/push/readout/
    readout = load_readout("runs/push/readout")                   # hvp.contracts.StateReadout
    states = readout.states(latents)                              # float32 [N, D] -> float32 [N, S]
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hvp.config import Config, require
from hvp.contracts import check_array
from hvp.data import TrajectoryDataset
from hvp.models.checkpoint import load_small_model, save_small_model
from hvp.models.fit_distance import EpisodeLatents, episode_latents, init_latent_model, train_steps
from hvp.models.networks import LatentNormalized, layer_norm_mlp
from hvp.models.runtime import resolve_device

FORMAT_VERSION = 1
KIND = "state_readout"
READOUT_DIR = "readout"


@dataclasses.dataclass(frozen=True)
class ReadoutConfig(Config):
    """Network of the readout; latent_dim comes from the world model, state_dim from the dataset."""

    latent_dim: int = 160
    state_dim: int = 2
    hidden_dim: int = 256
    depth: int = 2

    def validate(self) -> None:
        for name in ("latent_dim", "state_dim", "hidden_dim", "depth"):
            require(getattr(self, name) >= 1, "ReadoutConfig.{} must be >= 1 (got {})", name, getattr(self, name))


@dataclasses.dataclass(frozen=True)
class ReadoutTrainConfig(Config):
    steps: int = 4000  # optimizer updates
    batch_size: int = 512
    learning_rate: float = 1e-3
    huber_delta: float = 0.05  # smooth-L1 switch point, in state units: squared error below it, absolute above
    imagine_horizon: int = 10  # furthest imagined latent trained on (the planner's H)
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "imagine_horizon"):
            require(getattr(self, name) >= 1, "ReadoutTrainConfig.{} must be >= 1 (got {})", name,
                    getattr(self, name))
        for name in ("learning_rate", "huber_delta"):
            require(getattr(self, name) > 0, "ReadoutTrainConfig.{} must be > 0 (got {})", name, getattr(self, name))


ReadoutConfig.PRESETS = {"debug": dict(hidden_dim=32), "cpu": {}, "gpu": dict(hidden_dim=512)}
ReadoutTrainConfig.PRESETS = {"debug": dict(steps=300, batch_size=128, imagine_horizon=5), "cpu": {},
                              "gpu": dict(steps=20_000, batch_size=2048)}


class ReadoutNet(LatentNormalized):
    """MLP on per-dimension normalized latents -> true state, float32 [N, S]."""

    def __init__(self, config: ReadoutConfig) -> None:
        super().__init__(config.latent_dim)
        self.config = config
        self.mlp = layer_norm_mlp(config.latent_dim, config.hidden_dim, config.depth, config.state_dim)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalize(latents))


class TorchReadout:
    """hvp.contracts.StateReadout over a ReadoutNet: states(latents float32 [N, D]) -> float32 [N, S]."""

    def __init__(self, net: ReadoutNet, device: str | torch.device | None = "cpu", task: str | None = None) -> None:
        if not isinstance(net, ReadoutNet):
            raise TypeError(f"net: expected a ReadoutNet, got {type(net).__name__}")
        self.task = task  # the registered task whose true state this reads (the dataset's env_name)
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.latent_dim, self.state_dim = net.config.latent_dim, net.config.state_dim

    @torch.no_grad()
    def states(self, latents: np.ndarray) -> np.ndarray:
        latents = check_array("latents", latents, (None, self.latent_dim), np.float32)
        return self.net(torch.from_numpy(latents).to(self.device)).cpu().numpy()


@dataclasses.dataclass(frozen=True)
class ReadoutSamples:
    """(latent, true state) pairs of every kind the planner reads: filtered, encoded, imagined j + 1 ahead."""

    latents: np.ndarray  # float32 [M, D]
    states: np.ndarray  # float32 [M, S]
    kinds: np.ndarray  # int64 [M]: 0 filtered, 1 encoded, 1 + j imagined j steps ahead (j >= 1)


def readout_samples(latents: EpisodeLatents, true_states: np.ndarray) -> ReadoutSamples:
    """Pair `latents` (of episodes flattened frame after frame) with true_states float [F, S] of the same frames."""
    if len(true_states) != latents.frames:
        raise ValueError(f"true_states: expected {latents.frames} rows (one per frame), got {len(true_states)}")
    frames = np.arange(latents.frames)
    ends = (latents.starts + latents.lengths)[latents.episode]
    parts = [(latents.filtered, frames, 0), (latents.encoded, frames, 1)]
    for lead in range(latents.imagined.shape[1]):  # imagined[t, lead] is frame t + lead + 1 of the same episode
        valid = frames + lead + 1 < ends
        parts.append((latents.imagined[valid, lead], frames[valid] + lead + 1, 2 + lead))
    return ReadoutSamples(np.concatenate([z for z, _, _ in parts]).astype(np.float32),
                          np.concatenate([true_states[f] for _, f, _ in parts]).astype(np.float32),
                          np.concatenate([np.full(len(f), kind) for _, f, kind in parts]))


def episode_true_states(episodes: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """float32 [F, S]: every episode's "true_state", frame after frame; a clear error when a dataset has none."""
    missing = [index for index, episode in enumerate(episodes) if "true_state" not in episode]
    if missing:
        raise ValueError(f"dataset: episode {missing[0]} has no 'true_state' (the readout learns from it; "
                         f"collect in simulation, or record the state beside each image)")
    return np.concatenate([np.asarray(e["true_state"], np.float32) for e in episodes])


def fit_readout(samples: ReadoutSamples, model: ReadoutConfig, train: ReadoutTrainConfig, *, progress: bool = True,
                threads: int = 1) -> ReadoutNet:
    """Regress true states from latents (smooth L1); -> the net in eval mode."""
    net, rng = init_latent_model(samples.latents, model, ReadoutNet, train.seed, threads)
    inputs, targets = torch.from_numpy(samples.latents), torch.from_numpy(samples.states)
    optimizer = torch.optim.Adam(net.parameters(), lr=train.learning_rate)

    def loss() -> torch.Tensor:
        batch = torch.from_numpy(rng.integers(len(inputs), size=train.batch_size))
        return nn.functional.smooth_l1_loss(net(inputs[batch]), targets[batch], beta=train.huber_delta)

    net.train()
    train_steps(loss, optimizer, train.steps, "train readout", progress=progress)
    return net.eval()


def score_readout(readout: TorchReadout, samples: ReadoutSamples) -> dict[str, Any]:
    """Mean absolute error per state dimension for filtered, encoded and furthest-imagined latents."""
    errors = np.abs(readout.states(samples.latents) - samples.states)
    furthest = int(samples.kinds.max())
    kinds = {"filtered": 0, "encoded": 1, f"imagined_{furthest - 1}": furthest}
    return {name: np.round(errors[samples.kinds == kind].mean(0).astype(np.float64), 4).tolist()
            for name, kind in kinds.items()}


def train_readout(run_dir: str | Path, dataset: TrajectoryDataset, out: str | Path | None = None, *,
                  preset: str = "cpu", train_overrides: dict[str, Any] | None = None, held_out: float = 0.1,
                  threads: int = 1, progress: bool = True) -> tuple[TorchReadout, dict[str, Any]]:
    """Train the state readout of the world model in `run_dir` on `dataset` and save it to `out`
    (default RUN/readout) -> (the readout, the record written to its config.json incl. held-out errors)."""
    from hvp.models.runtime import load_runtime

    started = time.perf_counter()
    runtime = load_runtime(str(run_dir), device="cpu", threads=threads)
    train = ReadoutTrainConfig.preset(preset, **(train_overrides or {}))
    fit_set, test_set = dataset.split(held_out, seed=train.seed) if held_out > 0 else (dataset, None)

    def samples_of(episodes: Sequence[dict[str, np.ndarray]]) -> ReadoutSamples:
        states = episode_true_states(episodes)  # before the latents: a dataset without states fails fast
        return readout_samples(episode_latents(runtime, episodes, train.imagine_horizon), states)

    fit_samples = samples_of(fit_set.episodes)
    model = ReadoutConfig.preset(preset, latent_dim=runtime.latent_dim, state_dim=fit_samples.states.shape[1])
    task = dataset.env_args.get("env_name")
    readout = TorchReadout(fit_readout(fit_samples, model, train, progress=progress, threads=threads), task=task)
    errors = {"train": score_readout(readout, fit_samples)}
    if test_set is not None:
        errors["held_out"] = score_readout(readout, samples_of(test_set.episodes))
    record = {"train": train.to_dict(), "preset": preset, "world_model": str(run_dir), "task": task,
              "mean_abs_error": errors,
              "episodes": len(fit_set), "frames": int((fit_samples.kinds == 0).sum()),
              "wall_s": time.perf_counter() - started}
    save_readout(out or Path(run_dir) / READOUT_DIR, readout.net, record)
    return readout, record


def save_readout(folder: str | os.PathLike, net: ReadoutNet, record: dict[str, Any]) -> None:
    """Weights (safetensors) and config.json with `record` (its "task" names the task whose state it reads)."""
    save_small_model(folder, KIND, FORMAT_VERSION, net, extra=record)


def load_readout(model_dir: str | os.PathLike, device: str | torch.device | None = "cpu") -> TorchReadout:
    """The TorchReadout saved in `model_dir` by train_readout (hvp train-readout). Never unpickles."""
    net, config = load_small_model(model_dir, KIND, FORMAT_VERSION,
                                   lambda model: ReadoutNet(ReadoutConfig.from_dict(model)),
                                   train_hint="hvp train-readout RUN --data DATA.hdf5")
    return TorchReadout(net, device, task=config.get("task"))
