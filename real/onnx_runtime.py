"""OnnxRuntime: an exported RSSM (hvp export) behind hvp.contracts.ModelRuntime, numpy + onnxruntime only.

Same contract, state and numerics as hvp.models.runtime.TorchRuntime:
state {"deter": float32 [B, deter], "stoch": float32 [B, stoch]}, latent D = deter + stoch.

Graphs (folder layout and hashes: hvp.onnx_format), batch axis B dynamic:

    encoder       images uint8 [B, h, w, 3] -> embedding float32 [B, E]
    observe_step  deter [B, deter], stoch [B, stoch], action [B, A], embedding [B, E] -> deter_next, stoch_next
    imagine_step  deter [B, deter], stoch [B, stoch], action [B, A] -> deter_next, stoch_next (prior mean)
    decoder       latents float32 [B, D] -> images uint8 [B, h, w, 3]

imagine() calls imagine_step once per horizon step, so any horizon works with one graph:
a graph unrolled over a fixed H=10 was about 10% faster at N=128 on one thread here
(5.9 vs 6.6 ms, bench/runtime.py), not worth tying the export to one planning horizon.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime

from hvp.contracts import ModelState, check_array
from hvp.onnx_format import FORMAT_VERSION, MANIFEST_FILE, META_SCHEMA_HASH, file_sha256, model_hash, schema_hash, session_io

GRAPH_NAMES = ("encoder", "observe_step", "imagine_step", "decoder")


class ModelFolderError(ValueError):
    """An exported-model folder is missing, corrupt, or its graphs do not match its manifest."""


def default_threads() -> int:
    """The cores this process may use (respects CPU affinity, e.g. under taskset or a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _float_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """Like check_array for float32, but accepts any float dtype (planners often hold float64) and casts."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name}: expected a float32 numpy array, got {got}")
    return check_array(name, value.astype(np.float32, copy=False), shape, np.float32)


def read_manifest(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The folder's manifest.json, checked for format version, kind and graph files."""
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelFolderError(f"model_dir: {os.fspath(model_dir)!r} has no {MANIFEST_FILE}; "
                               f"write one with `hvp export RUN --out {os.fspath(model_dir)}`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{path}: corrupt JSON ({err})") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format_version {manifest.get('format_version')!r}, this hvp reads {FORMAT_VERSION}")
    if manifest.get("kind") != "rssm":
        raise ModelFolderError(f"{path}: kind must be 'rssm' for a ModelRuntime, got {manifest.get('kind')!r}")
    missing = [name for name in GRAPH_NAMES if name not in manifest.get("graphs", {})]
    if missing:
        raise ModelFolderError(f"{path}: expected graphs {list(GRAPH_NAMES)}, missing {missing}")
    return manifest


class OnnxRuntime:
    """hvp.contracts.ModelRuntime over an `hvp export` folder; never mutates a state it is given.

    `model_hash` identifies the graphs (for the bridge handshake); `threads` is onnxruntime's
    intra-op thread count per session (default: the cores this process may use).
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",), warmup: bool = True) -> None:
        model_dir = Path(model_dir)
        manifest = read_manifest(model_dir)
        self.threads = threads or default_threads()
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads: expected a positive int, got {threads!r}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1  # the graphs are chains: nothing to run side by side
        hashes, self._sessions = [], {}
        for name in GRAPH_NAMES:
            path = model_dir / manifest["graphs"][name]["file"]
            if not path.is_file():
                raise ModelFolderError(f"{model_dir / MANIFEST_FILE}: graph {name!r} file {path.name!r} is missing")
            hashes.append(file_sha256(path))
            if hashes[-1] != manifest["graphs"][name]["sha256"]:
                raise ModelFolderError(f"{path}: sha256 {hashes[-1]} differs from the manifest's "
                                       f"{manifest['graphs'][name]['sha256']}; the file was changed after export")
            self._sessions[name] = onnxruntime.InferenceSession(str(path), options, providers=list(providers))
        self._check_schema(model_dir, manifest)
        self.manifest = manifest
        self.model_hash = model_hash(hashes)
        self.schema_hash = manifest["schema_hash"]
        config = manifest["config"]
        self.image_shape = (*config["image_size"], 3)
        self.action_dim = int(config["action_dim"])
        self.latent_dim = int(config["deter_dim"]) + int(config["stoch_dim"])
        self._deter = int(config["deter_dim"])
        if warmup:
            self._warm_up()

    def _check_schema(self, model_dir: Path, manifest: dict[str, Any]) -> None:
        """Each graph carries the manifest's schema hash, and the graphs' real signatures hash to it."""
        graphs_io = {name: session_io(self._sessions[name]) for name in GRAPH_NAMES}
        for name in GRAPH_NAMES:
            found = self._sessions[name].get_modelmeta().custom_metadata_map.get(META_SCHEMA_HASH)
            if found != manifest["schema_hash"]:
                raise ModelFolderError(f"{model_dir / manifest['graphs'][name]['file']}: schema hash {found!r} differs "
                                       f"from the manifest's {manifest['schema_hash']!r}; it comes from another export")
        recomputed = schema_hash(manifest["config"], graphs_io)
        if recomputed != manifest["schema_hash"]:
            raise ModelFolderError(f"{model_dir / MANIFEST_FILE}: the graphs' inputs and outputs hash to {recomputed}, "
                                   f"the manifest says {manifest['schema_hash']}")

    def _warm_up(self) -> None:
        """One call of every graph: onnxruntime allocates and picks kernels on the first run."""
        state = self.initial_state(1)
        self.observe(state, np.zeros((1, *self.image_shape), np.uint8), np.zeros((1, self.action_dim), np.float32))
        self.decode(self.imagine(state, np.zeros((1, 1, self.action_dim), np.float32)))

    # -- input checks (the same as TorchRuntime's) ----------------------------------------
    def _state(self, state: ModelState, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(state, dict) or set(state) != {"deter", "stoch"}:
            raise ValueError(f"state: expected a dict with keys ['deter', 'stoch'], got {state!r:.80}")
        rows = batch if batch is not None else state["deter"].shape[0]
        deter = check_array("state['deter']", state["deter"], (rows, self._deter), np.float32)
        stoch = check_array("state['stoch']", state["stoch"], (rows, self.latent_dim - self._deter), np.float32)
        return deter, stoch

    def _run(self, graph: str, **inputs: np.ndarray) -> list[np.ndarray]:
        return self._sessions[graph].run(None, inputs)

    # -- ModelRuntime ------------------------------------------------------------------
    def initial_state(self, batch: int) -> ModelState:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: expected a positive int, got {batch!r}")
        return {"deter": np.zeros((batch, self._deter), np.float32),
                "stoch": np.zeros((batch, self.latent_dim - self._deter), np.float32)}

    def observe(self, state: ModelState, images: np.ndarray, actions: np.ndarray) -> ModelState:
        """state (batch B), images uint8 [B, h, w, 3], actions float32 [B, A] that led to them -> new state."""
        batch = check_array("images", images, (None, *self.image_shape), np.uint8).shape[0]
        actions = _float_array("actions", actions, (batch, self.action_dim))
        deter, stoch = self._state(state, batch)
        (embedding,) = self._run("encoder", images=np.ascontiguousarray(images))
        deter, stoch = self._run("observe_step", deter=deter, stoch=stoch, action=actions, embedding=embedding)
        return {"deter": deter, "stoch": stoch}

    def encode(self, images: np.ndarray) -> np.ndarray:
        """images uint8 [B, h, w, 3] -> latents float32 [B, D]: a single image seen from the initial belief."""
        batch = check_array("images", images, (None, *self.image_shape), np.uint8).shape[0]
        zero = np.zeros((batch, self.action_dim), np.float32)
        return self.latent(self.observe(self.initial_state(batch), images, zero))

    def imagine(self, state: ModelState, actions: np.ndarray) -> np.ndarray:
        """state (batch 1 or N), actions float32 [N, H, A] -> latents float32 [N, H, D] after each action."""
        actions = _float_array("actions", actions, (None, None, self.action_dim))
        count, horizon = actions.shape[:2]
        batch = state["deter"].shape[0] if isinstance(state, dict) and "deter" in state else None
        if batch not in (1, count):
            raise ValueError(f"state: expected batch 1 or {count} (the number of action sequences), got {batch}")
        deter, stoch = self._state(state)
        deter = np.ascontiguousarray(np.broadcast_to(deter, (count, self._deter)))
        stoch = np.ascontiguousarray(np.broadcast_to(stoch, (count, stoch.shape[1])))
        latents = np.empty((count, horizon, self.latent_dim), np.float32)
        for step in range(horizon):
            deter, stoch = self._run("imagine_step", deter=deter, stoch=stoch,
                                     action=np.ascontiguousarray(actions[:, step]))
            latents[:, step, :self._deter], latents[:, step, self._deter:] = deter, stoch
        return latents

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 [..., D] -> images uint8 [..., h, w, 3]."""
        latents = _float_array("latents", latents, (*(None,) * (np.ndim(latents) - 1), self.latent_dim))
        if latents.ndim < 2:
            raise ValueError(f"latents: expected shape [..., {self.latent_dim}] with a batch axis, got {latents.shape}")
        (images,) = self._run("decoder", latents=np.ascontiguousarray(latents.reshape(-1, self.latent_dim)))
        return images.reshape(*latents.shape[:-1], *self.image_shape)

    def latent(self, state: ModelState) -> np.ndarray:
        """The planning latent [deter, stoch]: float32 [B, D]."""
        self._state(state)
        return np.concatenate([state["deter"], state["stoch"]], axis=-1)
