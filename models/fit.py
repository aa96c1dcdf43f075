"""Wire a training run: dataset -> model -> train() -> run directory, on one process or under torchrun (DDP).

Under ``torchrun --nproc_per_node=K`` every process samples its own windows (seed + rank),
DDP averages gradients (gloo on CPU, nccl on CUDA), and rank 0 alone writes the run
directory. Resuming restores weights, optimizer moments and both RNGs from the last checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from hvp.data import TrajectoryDataset
from hvp.models import checkpoint
from hvp.models.config import TrainConfig, model_config_class
from hvp.models.networks import to_float_images, to_uint8_images
from hvp.models.rssm import STATE_STEP_MODULES
from hvp.models.runtime import default_threads, resolve_device
from hvp.models.train import RunLog, optimizer_groups, train

BACKGROUND_WINDOWS = 64  # windows (from as many episodes) whose per-pixel median starts a learned background


def _distributed_setup(device: str | None) -> tuple[int, int, torch.device]:
    """-> (rank, world size, device); joins the process group when torchrun started us."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return dist.get_rank(), world, chosen


def _windows_to_torch(windows: dict[str, np.ndarray], device: torch.device,
                      keys: Sequence[str] = ("image", "action")) -> dict[str, torch.Tensor]:
    """The `keys` of sampled windows as tensors on `device` (the rest, e.g. true_state, stays behind)."""
    return {key: torch.from_numpy(windows[key]).to(device) for key in keys}


def save_preview(path: Path, model: nn.Module, batch: dict[str, torch.Tensor], context: int) -> None:
    """A PNG: for each window, a row of true frames over a row of predictions (context frames shown as truth)."""
    import imageio.v2 as imageio

    observed = {"states": batch["state"]} if "state" in batch else {}  # a model that observes its robot state
    predicted = model.predict_video(batch["image"], batch["action"], context, **observed)
    truth = to_float_images(batch["image"])
    rows = torch.cat([truth, torch.cat([truth[:, :context], predicted], 1)], dim=-2)  # [B, L, 3, 2h, w]
    grid = to_uint8_images(rows).permute(0, 2, 1, 3, 4).flatten(2, 3).flatten(0, 1)  # [B*2h, L*w, 3]
    imageio.imwrite(path, grid.cpu().numpy())


def robot_step_from(dataset: TrajectoryDataset, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The free-motion step (models/free_motion.py) of the dataset's recorded robot states, standardized as the
    model holds them: -> (weight [S, S + A], bias [S])."""
    from hvp.models.free_motion import fit_free_motion

    mean, std = model.proprio_mean.cpu().numpy(), model.proprio_std.cpu().numpy()
    steps = [((e["state"] - mean) / std, e["action"]) for e in dataset.episodes]
    weight, bias = fit_free_motion(np.concatenate([s[:-1] for s, _ in steps]),
                                   np.concatenate([a[:len(s) - 1] for s, a in steps]),
                                   np.concatenate([s[1:] for s, _ in steps]))
    return torch.from_numpy(weight), torch.from_numpy(bias)


def background_frames(dataset: TrajectoryDataset, seed: int, seq_len: int, device: torch.device) -> torch.Tensor:
    """BACKGROUND_WINDOWS windows' frames float32 [N, 3, h, w], from their own generator (same on every rank), so
    the training windows stay those of a run without a learned background."""
    windows = dataset.sample_windows(np.random.default_rng([seed, BACKGROUND_WINDOWS]), BACKGROUND_WINDOWS, seq_len)
    return to_float_images(torch.from_numpy(windows["image"]).to(device)).flatten(0, 1)


def cosine_learning_rate(config: TrainConfig, step: int) -> float:
    """The rate of update `step` (1-based): cosine from learning_rate to learning_rate * final_lr_fraction."""
    progress = (step - 1) / max(config.steps - 1, 1)
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def fit(dataset: TrajectoryDataset, out_dir: str | os.PathLike, *, kind: str = "rssm", preset: str = "cpu",
        train_overrides: dict[str, Any] | None = None, model_overrides: dict[str, Any] | None = None,
        resume: bool = False, device: str | None = None, threads: int | None = None,
        progress: bool = True) -> nn.Module:
    """Train a `kind` model ("rssm" | "pixel") on `dataset` into `out_dir`; returns the trained model."""
    out_dir = Path(out_dir)
    rank, world, device = _distributed_setup(device)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    torch.set_num_threads(threads or max(1, default_threads() // local_world))
    train_config = TrainConfig.preset(preset, **(train_overrides or {}))
    first = dataset.episodes[0]
    model_overrides = dict(model_overrides or {})
    if model_overrides.get("proprio_weight"):  # the robot state's size is the dataset's
        model_overrides["proprio_dim"] = first["state"].shape[1]
    model_config = model_config_class(kind).preset(preset, image_size=tuple(first["image"].shape[1:3]),
                                                   action_dim=first["action"].shape[1], **model_overrides)
    has_checkpoint = (out_dir / checkpoint.TRAIN_STEP_FILE).is_file()
    if has_checkpoint and not resume:
        raise FileExistsError(f"out: {out_dir} already holds a run; pass resume=True (--resume) or choose another --out")
    # seeds: the same model init on every rank, different windows per rank
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed + 1000 * rank)
    resuming, start_step = resume and has_checkpoint, 0
    if resuming:  # the saved model's own config wins over the preset; the weights are the average, if one was kept
        saved_kind, model, _ = checkpoint.load_model(out_dir, device)
        if saved_kind != kind:
            raise checkpoint.CheckpointError(f"out: {out_dir} holds a {saved_kind!r} model; cannot resume it as {kind!r}")
    else:
        model = checkpoint.build_model(kind, model_config).to(device)
        if getattr(model_config, "learned_background", False) or getattr(model_config, "points_on_foreground", False):
            empty_scene_frames = background_frames(dataset, train_config.seed, train_config.seq_len, device)
            if model_config.learned_background:
                model.decoder.set_background(empty_scene_frames)
            if model_config.points_on_foreground:
                model.encoder.set_point_background(empty_scene_frames)
        if getattr(model_config, "proprio_dim", 0):
            model.set_proprio_scale(torch.from_numpy(np.concatenate([e["state"] for e in dataset.episodes])).float())
        if getattr(model_config, "robot_step_fit", False):
            model.set_robot_step(*robot_step_from(dataset, model))
    if (tuple(model.config.image_size), model.config.action_dim) != (model_config.image_size, model_config.action_dim):
        raise ValueError(f"dataset: images {model_config.image_size} and action dim {model_config.action_dim} do not "
                         f"match the model in {out_dir} ({tuple(model.config.image_size)}, {model.config.action_dim})")
    # the moving average starts from the loaded weights, before the weights being trained replace them
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(train_config.ema_decay), use_buffers=True)
                if train_config.ema_decay and rank == 0 else None)
    saved = averaged.module if averaged is not None else model  # what model.safetensors holds and fit returns
    optimizer = torch.optim.Adam(optimizer_groups(model, STATE_STEP_MODULES), lr=train_config.learning_rate, eps=1e-5)
    if resuming:
        start_step = checkpoint.load_train_state(out_dir, optimizer, rng, model)
        if averaged is not None:
            averaged.n_averaged.fill_(start_step)  # > 0: average into the loaded weights rather than copy over them
        if rank:  # only rank 0's sampler state is saved; the others continue on a fresh stream of their own
            rng = np.random.default_rng([train_config.seed, rank, start_step])
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    inputs = ("image", "action", "state") if getattr(model.config, "proprio_dim", 0) else ("image", "action")
    preview_batch = _windows_to_torch(dataset.sample_windows(np.random.default_rng(train_config.seed), 4,
                                                             train_config.seq_len), device, inputs)
    env_args = dict(dataset.env_args)
    log = RunLog(out_dir) if rank == 0 else None

    def next_batch() -> dict[str, torch.Tensor]:
        return _windows_to_torch(dataset.sample_windows(rng, train_config.batch_size, train_config.seq_len), device,
                                 inputs)

    def save(step: int) -> None:
        checkpoint.save_model(out_dir, kind, saved, train_config, env_args)
        checkpoint.save_train_state(out_dir, step, optimizer, rng, model if averaged is not None else None)

    def preview(step: int) -> None:
        save_preview(out_dir / "previews" / f"step{step:07d}.png", saved, preview_batch, train_config.preview_context)

    if rank == 0:
        (out_dir / "previews").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    final = train(wrapped, optimizer, next_batch, start_step=start_step, steps=train_config.steps,
                  grad_clip=train_config.grad_clip, log_every=train_config.log_every,
                  on_log=log.write if log else None,
                  every=([(1, lambda step: averaged.update_parameters(model))] if averaged is not None else [])
                  + ([(train_config.save_every, save), (train_config.preview_every, preview)] if rank == 0 else []),
                  frames_per_step=train_config.batch_size * train_config.seq_len * world,
                  learning_rate=partial(cosine_learning_rate, train_config), progress=progress and rank == 0,
                  inputs=inputs)
    if log is not None:
        log.close()
        summary = {"kind": kind, "preset": preset, "start_step": start_step, "steps": train_config.steps,
                   "wall_s": time.perf_counter() - started, "world_size": world, "device": str(device),
                   "threads": torch.get_num_threads(), "last_metrics": final}
        (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return saved.eval()
