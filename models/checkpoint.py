"""Run directories on disk: safetensors weights + JSON config, never pickle.

    run_dir/config.json             {"format_version", "kind", "model": {...}, "train": {...}, "env_args": {...}}
    run_dir/model.safetensors       weights; metadata repeats format_version, kind and model config
    run_dir/train_state.safetensors optimizer moments + torch RNG (resume); train_state.json: step, numpy RNG

A small model beside a run (the temporal distance, the subgoal generator) is a folder of the same two files,
written by save_small_model and read by load_small_model:

    folder/config.json              {"format_version", "kind", "model": {...}, ...extra}
    folder/model.safetensors        weights; metadata repeats format_version, kind and model config

Every file is written to a temporary name and renamed, so an interrupted save leaves the last good one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from hvp.models.config import TrainConfig, model_config_class

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAIN_STATE_FILE = "train_state.safetensors"
TRAIN_STEP_FILE = "train_state.json"
TRAINING_WEIGHTS_PREFIX = "training_weights."  # in TRAIN_STATE_FILE, where model.safetensors holds their average


class CheckpointError(ValueError):
    """A run directory is missing, corrupt, or does not match the model being loaded."""


def build_model(kind: str, config: Any) -> nn.Module:
    """A fresh model of `kind` ("rssm" or "pixel") from its config."""
    if kind == "rssm":
        from hvp.models.rssm import RSSM

        return RSSM(config)
    if kind == "pixel":
        from hvp.models.pixel_predictor import PixelPredictor

        return PixelPredictor(config)
    raise CheckpointError(f"model kind: expected 'rssm' or 'pixel', got {kind!r}")


def _replace_into(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, value: dict) -> None:
    _replace_into(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2, sort_keys=True)))


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}


def save_model(run_dir: str | os.PathLike, kind: str, model: nn.Module, train: TrainConfig,
               env_args: dict[str, Any]) -> None:
    """Write config.json and model.safetensors of `model` (an RSSM or PixelPredictor, not a DDP wrapper)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    header = {"format_version": FORMAT_VERSION, "kind": kind, "model": model.config.to_dict()}
    _write_json(run_dir / CONFIG_FILE, {**header, "train": train.to_dict(), "env_args": env_args})
    _write_weights(run_dir / WEIGHTS_FILE, model, header)


def _write_weights(path: Path, module: nn.Module, header: dict[str, Any]) -> None:
    """`module`'s state dict to safetensors at `path`, with each header entry JSON-encoded as metadata."""
    metadata = {key: json.dumps(value, sort_keys=True) for key, value in header.items()}
    _replace_into(path, lambda tmp: save_file(_tensors(module), tmp, metadata=metadata))


def _read_json(path: Path, missing: str) -> dict[str, Any]:
    """The JSON object at `path`; CheckpointError(`missing`) when there is no such file."""
    if not path.is_file():
        raise CheckpointError(missing)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt JSON ({err})") from err


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json, checked for format version and kind."""
    path = Path(run_dir) / CONFIG_FILE
    config = _read_json(path, f"run_dir: {os.fspath(run_dir)!r} has no {CONFIG_FILE}; "
                              "is it a run directory of hvp train?")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {config.get('format_version')!r}, this hvp reads {FORMAT_VERSION}")
    if config.get("kind") not in ("rssm", "pixel"):
        raise CheckpointError(f"{path}: kind must be 'rssm' or 'pixel', got {config.get('kind')!r}")
    return config


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {path}")
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
        return load_file(path), metadata
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt or not a safetensors file ({err})") from err


def load_model(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[str, nn.Module, dict[str, Any]]:
    """-> (kind, model in eval mode on `device`, the run's config.json dict). Never unpickles."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    kind = config["kind"]
    model = build_model(kind, model_config_class(kind).from_dict(config["model"]))
    tensors, metadata = _load_tensors(run_dir / WEIGHTS_FILE)
    if metadata.get("kind") != json.dumps(kind) or metadata.get("model") != json.dumps(config["model"], sort_keys=True):
        raise CheckpointError(f"{run_dir / WEIGHTS_FILE} was saved for another model than {run_dir / CONFIG_FILE} "
                              f"describes (weights say kind {metadata.get('kind')}, config {metadata.get('model')})")
    _check_tensors(run_dir / WEIGHTS_FILE, model.state_dict(), tensors)
    model.load_state_dict(tensors)
    return kind, model.to(device).eval(), config


def _check_tensors(path: Path, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(found[k].shape)}"
             for k in sorted(set(expected) & set(found)) if expected[k].shape != found[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                              f"wrong shapes {wrong[:5]}")


# -- small models beside a run -------------------------------------------------------------
def save_small_model(folder: str | os.PathLike, kind: str, format_version: int, module: nn.Module,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write config.json (`extra`, e.g. training config and scores, + format_version, kind and
    `module.config`) and model.safetensors of `module` into `folder`; -> the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header = {"format_version": format_version, "kind": kind, "model": module.config.to_dict()}
    _write_json(folder / CONFIG_FILE, {**(extra or {}), **header})
    _write_weights(folder / WEIGHTS_FILE, module, header)
    return folder


def load_small_model(folder: str | os.PathLike, kind: str, format_version: int,
                     build: Callable[[dict[str, Any]], nn.Module], train_hint: str) -> tuple[nn.Module, dict[str, Any]]:
    """-> (the module that `build(config["model"])` makes, with the weights of `folder`; config.json's dict).

    Refuses another kind or format_version, and weights saved for another model config, with a
    CheckpointError naming the file; `train_hint` says how to make the folder when it is missing
    (e.g. "hvp train-distance RUN --data DATA.hdf5"). Never unpickles.
    """
    folder = Path(folder)
    path = folder / CONFIG_FILE
    config = _read_json(path, f"model_dir: {os.fspath(folder)!r} has no {CONFIG_FILE}; train one with `{train_hint}`")
    if config.get("kind") != kind or config.get("format_version") != format_version:
        raise CheckpointError(f"{path}: expected kind {kind!r} format_version {format_version}, "
                              f"got {config.get('kind')!r} {config.get('format_version')!r}")
    module = build(config["model"])
    tensors, metadata = _load_tensors(folder / WEIGHTS_FILE)
    if metadata.get("model") != json.dumps(config["model"], sort_keys=True):
        raise CheckpointError(f"{folder / WEIGHTS_FILE} was saved for another model than {path} describes")
    _check_tensors(folder / WEIGHTS_FILE, module.state_dict(), tensors)
    module.load_state_dict(tensors)
    return module, config


# -- resume state --------------------------------------------------------------------------
def save_train_state(run_dir: str | os.PathLike, step: int, optimizer: torch.optim.Optimizer,
                     rng: np.random.Generator, training_weights: nn.Module | None = None) -> None:
    """Optimizer moments, torch and numpy RNG states and the step count, for an exact resume; also the weights
    being trained where model.safetensors holds others (their moving average)."""
    run_dir = Path(run_dir)
    state = optimizer.state_dict()
    tensors = {f"state.{index}.{name}": value.detach().cpu().contiguous()
               for index, slots in state["state"].items() for name, value in slots.items()}
    tensors["torch_rng"] = torch.get_rng_state()
    if training_weights is not None:
        tensors.update({f"{TRAINING_WEIGHTS_PREFIX}{name}": value for name, value in _tensors(training_weights).items()})
    _replace_into(run_dir / TRAIN_STATE_FILE, lambda tmp: save_file(tensors, tmp))
    _write_json(run_dir / TRAIN_STEP_FILE, {"format_version": FORMAT_VERSION, "step": step,
                                            "param_groups": state["param_groups"],
                                            "numpy_rng": rng.bit_generator.state})


def load_train_state(run_dir: str | os.PathLike, optimizer: torch.optim.Optimizer,
                     rng: np.random.Generator, model: nn.Module) -> int:
    """Restore what save_train_state wrote into `optimizer`, `rng` and, where it saved the weights being trained,
    `model`; -> the step to continue from."""
    run_dir = Path(run_dir)
    path = run_dir / TRAIN_STEP_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot resume ({err})") from err
    tensors, _ = _load_tensors(run_dir / TRAIN_STATE_FILE)
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": slots, "param_groups": info["param_groups"]})
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: optimizer state does not match the model ({err})") from err
    weights = {key[len(TRAINING_WEIGHTS_PREFIX):]: value for key, value in tensors.items()
               if key.startswith(TRAINING_WEIGHTS_PREFIX)}
    if weights:
        _check_tensors(run_dir / TRAIN_STATE_FILE, _tensors(model), weights)
        model.load_state_dict(weights)
    torch.set_rng_state(tensors["torch_rng"])
    rng.bit_generator.state = info["numpy_rng"]
    return int(info["step"])
