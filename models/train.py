"""The training loop and what it writes: a function that takes its parts.

`train()` knows nothing about files, datasets or processes: it asks `next_batch()` for
windows, steps the optimizer and calls back for logging, checkpoints and previews.
hvp.models.fit wires it to a dataset, a run directory and (under torchrun) DDP.
"""
from __future__ import annotations

import csv
import importlib.util
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

Batch = dict[str, torch.Tensor]  # "image" uint8 [B, L, h, w, 3], "action" float32 [B, L, A]
Metrics = dict[str, float]


class RunLog:
    """metrics.csv in the run directory (appended across resumes), plus TensorBoard when it is installed."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self._fields: list[str] | None = None
        if self.path.is_file():
            with open(self.path, newline="") as handle:
                self._fields = next(csv.reader(handle), None)
        self._board = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._board = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def write(self, step: int, metrics: Metrics) -> None:
        row = {"step": step, **metrics}
        if self._fields is None:
            self._fields = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._fields)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([f"{row[k]:.6g}" if isinstance(row.get(k), float) else row.get(k, "")
                                         for k in self._fields])
        if self._board is not None:
            for key, value in metrics.items():
                self._board.add_scalar(key, value, step)

    def close(self) -> None:
        if self._board is not None:
            self._board.close()


def optimizer_groups(model: nn.Module, apart: Sequence[str] = ()) -> list[dict[str, list[nn.Parameter]]]:
    """`model`'s trainable parameters as optimizer groups: those of each of its submodules named in `apart` (the ones
    it has) in one group, the rest in another. train() clips each group's gradient norm on its own, so a part whose
    loss has far larger gradients cannot shrink the rest's updates under one shared clip."""
    separate = [p for name in apart if hasattr(model, name)
                for p in getattr(model, name).parameters() if p.requires_grad]
    ids = {id(p) for p in separate}
    groups = [[p for p in model.parameters() if p.requires_grad and id(p) not in ids], separate]
    return [{"params": group} for group in groups if group]


def train(model: nn.Module, optimizer: torch.optim.Optimizer, next_batch: Callable[[], Batch], *,
          start_step: int, steps: int, grad_clip: float, log_every: int,
          on_log: Callable[[int, Metrics], None] | None = None,
          every: Sequence[tuple[int, Callable[[int], None]]] = (),
          frames_per_step: int = 0, learning_rate: Callable[[int], float] | None = None,
          progress: bool = True, inputs: Sequence[str] = ("image", "action")) -> Metrics:
    """Run updates start_step+1 .. steps. `model(*batch[inputs]) -> (loss, metrics)`, by default
    model(images, actions); it may be DDP-wrapped. Each of the optimizer's parameter groups has its gradient norm
    clipped to grad_clip on its own (optimizer_groups).

    `every` pairs an interval with a callback given the finished step (checkpoints, previews);
    `frames_per_step` (all processes together) turns update time into a throughput figure;
    `learning_rate(step)`, when given, sets the optimizer's rate before each update (a function of
    the step alone, so a resumed run continues the same schedule).
    Returns the last logged metrics.
    """
    model.train()
    last: Metrics = {}
    window: list[Metrics] = []
    started = time.perf_counter()
    bar = tqdm(range(start_step + 1, steps + 1), initial=start_step, total=steps, desc="train", unit="step",
               disable=not progress)
    for step in bar:
        # update
        batch = next_batch()
        loss, metrics = model(*(batch[key] for key in inputs))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}; lower learning_rate or check the data")
        if learning_rate is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.stack([nn.utils.clip_grad_norm_(group["params"], grad_clip)  # each group on its own
                                 for group in optimizer.param_groups]).norm()
        optimizer.step()
        window.append({**{k: float(v) for k, v in metrics.items()}, "grad_norm": float(grad_norm)})
        # report
        if step % log_every == 0 or step == steps:
            elapsed = time.perf_counter() - started
            last = {key: sum(m[key] for m in window) / len(window) for key in window[0]}
            last["frames_per_s"] = frames_per_step * len(window) / max(elapsed, 1e-9)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k != "frames_per_s"})
            if on_log is not None:
                on_log(step, last)
            window, started = [], time.perf_counter()
        for interval, callback in every:
            if step % interval == 0 or step == steps:
                callback(step)
    bar.close()
    return last
