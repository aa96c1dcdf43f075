"""Opening one model of an `hvp export` folder in onnxruntime, verified against its manifest.

    model = open_model("runs/maze-easy/onnx", "rssm", ("encoder", ...), threads=1)
    model.sessions["encoder"].run(None, {...}); model.config; model.model_hash

OneGraphModel is the base of the exported models that run a single graph (readout, distance, subgoals).

Checks, in order: the manifest's format version and the model kind; each graph file's
sha256 (a changed file is refused); each graph's schema hash in its metadata; the
schema hash recomputed from the sessions' real inputs and outputs. Layout: hvp.onnx_format.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime

from hvp.onnx_format import FORMAT_VERSION, MANIFEST_FILE, META_SCHEMA_HASH, file_sha256, model_hash, schema_hash, session_io


class ModelFolderError(ValueError):
    """An exported-model folder is missing, corrupt, or its graphs do not match its manifest."""


def default_threads() -> int:
    """The cores this process may use (respects CPU affinity, e.g. under taskset or a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class OnnxModel:
    config: dict[str, Any]  # the model's config as exported
    sessions: dict[str, Any]  # graph name -> onnxruntime.InferenceSession
    model_hash: str  # identity of the whole folder (all models), as in the bridge handshake
    schema_hash: str  # this model's config and graph signatures
    manifest: dict[str, Any]


def read_manifest(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The folder's manifest.json, checked for format version and a models table."""
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelFolderError(f"model_dir: {os.fspath(model_dir)!r} has no {MANIFEST_FILE}; "
                               f"write one with `hvp export RUN --out {os.fspath(model_dir)}`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{path}: corrupt JSON ({err})") from err
    if manifest.get("format_version") != FORMAT_VERSION or not isinstance(manifest.get("models"), dict):
        raise ModelFolderError(f"{path}: expected format_version {FORMAT_VERSION} with a models table, got "
                               f"format_version {manifest.get('format_version')!r}")
    return manifest


def open_model(model_dir: str | os.PathLike, kind: str, graph_names: Sequence[str], threads: int | None = None,
               providers: Sequence[str] = ("CPUExecutionProvider",)) -> OnnxModel:
    """Sessions of all of `kind`'s graphs, which must include `graph_names`; `threads` intra-op threads each
    (default: the cores this process may use)."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    manifest_path = model_dir / MANIFEST_FILE
    entry = manifest["models"].get(kind)
    if entry is None:
        raise ModelFolderError(f"{manifest_path}: expected a {kind!r} model, the folder has {sorted(manifest['models'])}")
    missing = [name for name in graph_names if name not in entry["graphs"]]
    if missing:
        raise ModelFolderError(f"{manifest_path}: expected {kind} graphs {list(graph_names)}, missing {missing}")
    threads = default_threads() if threads is None else threads
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected a positive int, got {threads!r}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graphs are chains: nothing to run side by side
    sessions = {}
    for name in entry["graphs"]:
        path = model_dir / entry["graphs"][name]["file"]
        if not path.is_file():
            raise ModelFolderError(f"{manifest_path}: graph {name!r} file {path.name!r} is missing")
        digest = file_sha256(path)
        if digest != entry["graphs"][name]["sha256"]:
            raise ModelFolderError(f"{path}: sha256 {digest} differs from the manifest's "
                                   f"{entry['graphs'][name]['sha256']}; the file was changed after export")
        sessions[name] = onnxruntime.InferenceSession(str(path), options, providers=list(providers))
        found = sessions[name].get_modelmeta().custom_metadata_map.get(META_SCHEMA_HASH)
        if found != entry["schema_hash"]:
            raise ModelFolderError(f"{path}: schema hash {found!r} differs from the manifest's "
                                   f"{entry['schema_hash']!r}; it comes from another export")
    recomputed = schema_hash(entry["config"], {name: session_io(session) for name, session in sessions.items()})
    if recomputed != entry["schema_hash"]:
        raise ModelFolderError(f"{manifest_path}: the {kind} graphs' inputs and outputs hash to {recomputed}, "
                               f"the manifest says {entry['schema_hash']}")
    return OnnxModel(entry["config"], sessions, model_hash(manifest["models"]), entry["schema_hash"], manifest)


class OneGraphModel:
    """An exported model of one graph, opened and verified: subclasses set `kind` and `graph` and read their sizes
    from the exported config in `configure`; `threads` intra-op threads (default: the cores)."""

    kind: str
    graph: str

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        model = open_model(model_dir, self.kind, (self.graph,), threads, providers)
        self._session = model.sessions[self.graph]
        self.model_hash, self.schema_hash = model.model_hash, model.schema_hash
        # the models on world-model latents; the state dynamics works on task states and has none
        self.latent_dim = int(model.config["latent_dim"]) if "latent_dim" in model.config else None
        self.configure(model.config)

    def configure(self, config: dict[str, Any]) -> None:
        """Read the subclass's own sizes out of the exported config."""

    def run(self, **inputs: np.ndarray) -> np.ndarray:
        """The graph's single output for float32 `inputs` by name."""
        (output,) = self._session.run(None, {name: np.ascontiguousarray(value) for name, value in inputs.items()})
        return output
