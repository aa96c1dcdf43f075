"""The exported-model folder that `hvp export` writes and hvp.real's onnxruntime models read.

    NAME/onnx/manifest.json     {"format_version", "model_hash", "exporter",
                                 "models": {kind: {"config", "schema_hash",
                                                   "graphs": {graph: {"file", "sha256", "inputs", "outputs",
                                                                      "max_abs_difference"}}}}}
    NAME/onnx/<graph>.onnx      one graph per step function, batch axis dynamic; metadata_props repeat
                                format_version, kind, graph, config (JSON) and schema_hash of its model

Kinds: "rssm" (the world model, always), "temporal_distance" and "subgoal_cvae" (the subgoal
generator's midpoint graph), each when the run has one.
schema_hash, per model: sha256 of its config and its graphs' inputs and outputs (names,
onnxruntime type strings, shapes with "batch" for the dynamic axis), so a graph from another
export or another model size is refused. model_hash: sha256 over every graph file's sha256,
sorted by "kind/graph": the identity of the whole folder, checked in the bridge handshake.

Both sides describe graphs through an onnxruntime InferenceSession, so the reader needs no
`onnx` package and no torch. Nothing here imports either.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
BATCH_AXIS = "batch"
# metadata_props keys of every graph
META_FORMAT_VERSION = "hvp.format_version"
META_KIND = "hvp.kind"
META_GRAPH = "hvp.graph"
META_CONFIG = "hvp.config"
META_SCHEMA_HASH = "hvp.schema_hash"


def session_io(session: Any) -> dict[str, list[list[Any]]]:
    """An onnxruntime InferenceSession's signature: {"inputs"|"outputs": [[name, type, shape], ...]}.

    type is onnxruntime's string ("tensor(float)", "tensor(uint8)"); shape lists ints and "batch".
    """
    def describe(args: Iterable[Any]) -> list[list[Any]]:
        return [[arg.name, arg.type, [dim if isinstance(dim, int) else str(dim) for dim in arg.shape]] for arg in args]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}


def schema_hash(config: Mapping[str, Any], graphs_io: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 hex of the model config and the graphs' signatures (graph name -> session_io())."""
    canonical = json.dumps({"config": config, "graphs": graphs_io}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_hash(manifest_models: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 hex over the graph files' sha256 digests of manifest["models"], sorted by "kind/graph"."""
    digests = sorted((f"{kind}/{graph}", entry["sha256"]) for kind, model in manifest_models.items()
                     for graph, entry in model["graphs"].items())
    return hashlib.sha256("".join(f"{name}={digest}\n" for name, digest in digests).encode()).hexdigest()
