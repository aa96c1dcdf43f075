"""Fine-tune a trained world model on a small real dataset, with early stopping on held-out real episodes.

    summary = finetune("runs/maze-easy", load_dataset("real.hdf5"), "runs/maze-easy-ft",
                       FinetuneConfig(mode="encoder-decoder", sim_fraction=0.5), sim=load_dataset("sim.hdf5"))

Modes: "full" updates every weight; "encoder-decoder" (RSSM only) freezes the dynamics
(GRU input layer, GRU cell and prior), so the real images are re-mapped into the latent
space the dynamics, the planner's cost and the temporal-distance model already know. Sim
windows mixed into every batch (`sim_fraction`) keep the model from forgetting the sim domain.

KL balance: training splits the KL between moving the prior (0.8) and the posterior (0.2).
With the prior frozen, the prior's share trains nothing, and the posterior drifts away from
what the dynamics predict: on maze-easy under the mild shift the KL rose from ~17 nats to ~150
in 200 updates, and planning through the bridge fell from 10/10 to 0-1/10. So encoder-decoder
fine-tuning puts the whole KL on the posterior (`kl_balance` None -> 0.0); the saved run keeps
its own balance.

The loop is hvp.models.train.train(), run in slices of `eval_every` updates; after each slice
the negative ELBO of fixed held-out real windows decides: best weights are kept, and
`patience` slices without improvement stop the run. The best weights are what is saved.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hvp.config import Config, require
from hvp.data import TrajectoryDataset
from hvp.models import checkpoint
from hvp.models.config import FOREGROUND_REFERENCES, TrainConfig
from hvp.models.fit import _windows_to_torch, background_frames
from hvp.models.rssm import STATE_STEP_MODULES
from hvp.models.runtime import default_threads, resolve_device
from hvp.models.state_supervision import StateSupervised
from hvp.models.train import RunLog, optimizer_groups, train

MODES = ("full", "encoder-decoder")
KEEP = ("best", "last")
DYNAMICS_MODULES = ("input_layer", "cell", "prior_net")  # the RSSM's transition and prior: frozen in encoder-decoder
SUMMARY_FILE = "finetune.json"


@dataclass(frozen=True)
class FinetuneConfig(Config):
    mode: str = "full"  # "full" or "encoder-decoder" (dynamics frozen)
    steps: int = 400  # optimizer updates at most
    eval_every: int = 25  # updates between held-out evaluations
    patience: int = 4  # evaluations without a held-out improvement before stopping
    learning_rate: float = 2e-4  # below training's 1.5e-3: start from a good model, do not shake it loose
    batch_size: int = 16
    seq_len: int = 16
    sim_fraction: float = 0.0  # share of each batch's windows drawn from the sim dataset
    held_out: float = 0.2  # share of the real episodes kept out of training for early stopping
    held_out_windows: int = 32  # fixed held-out windows scored after every slice
    grad_clip: float = 100.0
    kl_balance: float | None = None  # the model's KL balance while fine-tuning; None: 0.0 (all on the posterior) in
    # encoder-decoder mode, whose prior is frozen, and the run's own in full mode
    overshooting: int | None = None  # the model's latent-overshooting steps while fine-tuning (RSSMConfig); None:
    # the run's own
    foreground_reference: str | None = None  # the RSSM's reconstruction background while fine-tuning; None: the run's
    state_loss: float = 0.0  # weight of state-supervised imagination (hvp.models.state_supervision); 0: off
    state_horizon: int = 10  # its open-loop steps (the planner's rollouts)
    state_dims: int = 0  # its leading state dimensions supervised; 0: all
    keep: str = "best"  # weights saved: "best" held-out loss (early stopping) or "last" (all `steps` updates)
    seed: int = 0

    def validate(self) -> None:
        require(self.mode in MODES, "FinetuneConfig.mode must be one of {} (got {!r})", MODES, self.mode)
        for name in ("steps", "eval_every", "patience", "batch_size", "held_out_windows"):
            require(getattr(self, name) >= 1, "FinetuneConfig.{} must be >= 1 (got {})", name, getattr(self, name))
        require(self.seq_len >= 3, "FinetuneConfig.seq_len must be >= 3 (got {})", self.seq_len)
        require(0 <= self.sim_fraction < 1, "FinetuneConfig.sim_fraction must be in [0, 1) (got {})", self.sim_fraction)
        require(0 < self.held_out < 1, "FinetuneConfig.held_out must be in (0, 1) (got {})", self.held_out)
        require(self.learning_rate > 0, "FinetuneConfig.learning_rate must be > 0 (got {})", self.learning_rate)
        require(self.kl_balance is None or 0 <= self.kl_balance <= 1,
                "FinetuneConfig.kl_balance must be None or in [0, 1] (got {})", self.kl_balance)
        require(self.overshooting is None or self.overshooting >= 0,
                "FinetuneConfig.overshooting must be None or >= 0 (got {})", self.overshooting)
        require(self.foreground_reference in (None, *FOREGROUND_REFERENCES),
                "FinetuneConfig.foreground_reference must be None or one of {} (got {!r})", FOREGROUND_REFERENCES,
                self.foreground_reference)
        require(self.keep in KEEP, "FinetuneConfig.keep must be one of {} (got {!r})", KEEP, self.keep)
        for name in ("state_loss", "state_horizon", "state_dims"):
            require(getattr(self, name) >= 0, "FinetuneConfig.{} must be >= 0 (got {})", name, getattr(self, name))

    def effective_kl_balance(self) -> float | None:
        """The KL balance to train with, None for the run's own."""
        if self.kl_balance is not None:
            return self.kl_balance
        return 0.0 if self.mode == "encoder-decoder" else None


FinetuneConfig.PRESETS = {"debug": dict(steps=6, eval_every=2, patience=2, batch_size=4, seq_len=8,
                                        held_out_windows=4), "cpu": {}, "gpu": dict(steps=4000, batch_size=50)}


def freeze_dynamics(model: torch.nn.Module) -> list[str]:
    """Stop gradients into the RSSM's transition and prior; -> the frozen module names."""
    missing = [name for name in DYNAMICS_MODULES if not hasattr(model, name)]
    if missing:
        raise ValueError(f"mode 'encoder-decoder': the model ({type(model).__name__}) has no {missing}; "
                         f"it needs an RSSM run (use mode 'full' for other kinds)")
    frozen = [*DYNAMICS_MODULES, *(name for name in STATE_STEP_MODULES if hasattr(model, name))]
    for name in frozen:
        getattr(model, name).requires_grad_(False)
    return frozen


@torch.no_grad()
def held_out_loss(model: torch.nn.Module, windows: dict[str, torch.Tensor], seed: int,
                  inputs: tuple[str, ...] = ("image", "action")) -> float:
    """The model's loss (the negative ELBO, plus what it adds) on fixed windows, with its latent sampling seeded:
    comparable across evaluations."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loss, _ = model(*(windows[key] for key in inputs))
    model.train(was_training)
    return float(loss)


def state_supervised(model: torch.nn.Module, run_dir: str | os.PathLike, config: FinetuneConfig,
                     datasets: dict[str, TrajectoryDataset | None], device: torch.device) -> StateSupervised:
    """The model wrapped with RUN/readout for state-supervised imagination; every dataset must record true states
    the readout reads."""
    from hvp.models.readout import READOUT_DIR, load_readout

    if not hasattr(model, "open_loop"):
        raise ValueError(f"state_loss: the {type(model).__name__} model of {os.fspath(run_dir)!r} has no open-loop "
                         "rollout to supervise (an RSSM run has)")
    readout_dir = Path(run_dir) / READOUT_DIR
    if not readout_dir.is_dir():
        raise ValueError(f"state_loss: {os.fspath(run_dir)!r} has no {READOUT_DIR}/; make one with "
                         f"`hvp train-readout {os.fspath(run_dir)} --data DATA.hdf5` first")
    readout = load_readout(readout_dir, device=device)
    for name, dataset in datasets.items():
        if dataset is None:
            continue
        states = dataset.episodes[0]["true_state"]
        if states.shape[-1] != readout.state_dim or not np.all(np.isfinite(states)):
            raise ValueError(f"{name}: state_loss needs the {readout.state_dim}-dim true_state the readout reads; "
                             f"the data has true_state of shape {states.shape} (finite: {np.all(np.isfinite(states))})")
    return StateSupervised(model, readout.net.train(), config.state_loss, config.state_horizon, config.state_dims)


def _check_fits(model: torch.nn.Module, dataset: TrajectoryDataset, name: str) -> None:
    episode = dataset.episodes[0]
    found = (tuple(episode["image"].shape[1:3]), episode["action"].shape[1])
    expected = (tuple(model.config.image_size), model.config.action_dim)
    if found != expected:
        raise ValueError(f"{name}: images {found[0]} and action dim {found[1]} do not match the model's "
                         f"{expected[0]} and {expected[1]} (resize on import: hvp import-data --run RUN)")
    robot = getattr(model.config, "proprio_dim", 0)  # a model with a robot state trains on the recorded one
    if robot and episode["state"].shape[1] != robot:
        raise ValueError(f"{name}: the model's robot state has {robot} dims, the data's state "
                         f"{episode['state'].shape[1]}")


def finetune(run_dir: str | os.PathLike, real: TrajectoryDataset, out_dir: str | os.PathLike,
             config: FinetuneConfig = FinetuneConfig(), *, sim: TrajectoryDataset | None = None,
             device: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Fine-tune the model of `run_dir` on `real` (mixing in `sim`) into `out_dir`; -> the summary (also saved)."""
    out_dir = Path(out_dir)
    if (out_dir / checkpoint.WEIGHTS_FILE).exists():
        raise FileExistsError(f"out: {out_dir} already holds a model; choose another --out")
    if config.sim_fraction > 0 and sim is None:
        raise ValueError(f"sim: sim_fraction is {config.sim_fraction} but no sim dataset was given (--sim-data)")
    torch.set_num_threads(threads or default_threads())
    device = resolve_device(device)
    kind, model, run_config = checkpoint.load_model(run_dir, device)
    for name, dataset in (("data", real), ("sim-data", sim)):
        if dataset is not None:
            _check_fits(model, dataset, name)
    frozen = freeze_dynamics(model) if config.mode == "encoder-decoder" else []
    model_config = model.config
    loss_settings = {name: value for name, value in (("kl_balance", config.effective_kl_balance()),
                                                     ("overshooting", config.overshooting),
                                                     ("foreground_reference", config.foreground_reference))
                     if value is not None}
    if loss_settings:  # loss-only: restored before saving
        for name in loss_settings:
            if not hasattr(model_config, name):
                raise ValueError(f"{name}: the {kind!r} model of {os.fspath(run_dir)!r} has no such loss setting "
                                 "(an RSSM run has)")
        model.config = model_config.replace(**loss_settings)
    # only images and actions unless states are supervised: a recorded robot's true_state (NaN [T, 1]) need not
    # match the sim's
    trainee, inputs = model, ("image", "action")
    if getattr(model_config, "proprio_dim", 0):  # its robot-state tie trains on the robot's recorded state
        if config.state_loss:
            raise ValueError(f"state_loss: the model of {os.fspath(run_dir)!r} holds a robot state (proprio_weight); "
                             "state-supervised fine-tuning of such a model is not supported")
        inputs = ("image", "action", "state")
    if config.state_loss:
        trainee = state_supervised(model, run_dir, config, {"data": real, "sim-data": sim}, device)
        inputs = ("image", "action", "true_state")
    train_set, held = real.split(config.held_out, config.seed)
    if getattr(getattr(model, "encoder", None), "foreground_threshold", None) is not None:
        # the points' empty scene is a buffer, not learned: the robot's own, not the sim's the model was trained on
        model.encoder.set_point_background(background_frames(train_set, config.seed, config.seq_len, device))
    rng = np.random.default_rng(config.seed)
    held_windows = _windows_to_torch(held.sample_windows(np.random.default_rng(config.seed + 1),
                                                         config.held_out_windows, config.seq_len), device, inputs)
    sim_windows = round(config.batch_size * config.sim_fraction) if sim is not None else 0
    optimizer = torch.optim.Adam(optimizer_groups(trainee, STATE_STEP_MODULES), lr=config.learning_rate, eps=1e-5)

    def next_batch() -> dict[str, torch.Tensor]:
        parts = [train_set.sample_windows(rng, config.batch_size - sim_windows, config.seq_len)]
        if sim_windows:
            parts.append(sim.sample_windows(rng, sim_windows, config.seq_len))
        return _windows_to_torch({key: np.concatenate([p[key] for p in parts]) for key in inputs}, device, inputs)

    # train in slices, keep the best held-out weights, stop when patience runs out
    out_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(out_dir)
    history = [{"step": 0, "held_out_loss": held_out_loss(trainee, held_windows, config.seed, inputs)}]
    best = dict(history[0], state={k: v.detach().clone() for k, v in trainee.state_dict().items()})
    step, stale = 0, 0
    while step < config.steps and (stale < config.patience or config.keep == "last"):
        end = min(step + config.eval_every, config.steps)
        metrics = train(trainee, optimizer, next_batch, start_step=step, steps=end, grad_clip=config.grad_clip,
                        log_every=config.eval_every, on_log=log.write, progress=False, inputs=inputs)
        step = end
        history.append({"step": step, "held_out_loss": held_out_loss(trainee, held_windows, config.seed, inputs),
                        "train_loss": metrics.get("loss")})
        if history[-1]["held_out_loss"] < best["held_out_loss"] or config.keep == "last":
            best, stale = dict(history[-1], state={k: v.detach().clone() for k, v in trainee.state_dict().items()}), 0
        else:
            stale += 1
    log.close()
    trainee.load_state_dict(best["state"])
    model.config = model_config
    # save
    train_config = TrainConfig.from_dict(run_config["train"]).replace(
        steps=max(best["step"], 1), batch_size=config.batch_size, seq_len=config.seq_len,
        learning_rate=config.learning_rate, seed=config.seed)
    env_args = {**real.env_args, "finetuned_from": os.fspath(run_dir), "base_env_args": run_config["env_args"]}
    checkpoint.save_model(out_dir, kind, model.eval(), train_config, env_args)
    summary = {"run": os.fspath(run_dir), "config": config.to_dict(), "frozen": frozen,
               "kl_balance": model.config.kl_balance if config.effective_kl_balance() is None
               else config.effective_kl_balance(),
               "overshooting": getattr(model.config, "overshooting", 0) if config.overshooting is None
               else config.overshooting,
               # the readout trained beside it is not saved: refit one on the new latents (hvp train-readout)
               "state_loss": {"weight": config.state_loss, "horizon": config.state_horizon,
                              "dims": config.state_dims} if config.state_loss else None,
               "real_episodes": {"train": len(train_set), "held_out": len(held)},
               "sim_episodes": len(sim) if sim is not None else 0, "steps_run": step,
               "stopped_early": step < config.steps, "best_step": best["step"],
               "held_out_loss": {"before": history[0]["held_out_loss"], "best": best["held_out_loss"]},
               "history": history}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary
