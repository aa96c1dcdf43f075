"""torch -> ONNX: step graphs with explicit state in and out, batch axis dynamic, checked on export.

The exporter is generic: a GraphSpec is "a module + example inputs + names". A model kind
contributes a function that lists its graphs (rssm_graphs, distance_graphs, subgoal_graphs, readout_graphs,
state_dynamics_graphs) and an ExportModel in export_run, nothing else.

    manifest = export_run("runs/maze-easy", "runs/maze-easy/onnx")      # folder layout: hvp.onnx_format

Every graph is run in onnxruntime right after export on its example inputs and compared
with torch; an export whose outputs differ by more than the tolerance is refused
(exporters have shipped silent gate-layout bugs for GRUs).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hvp.models.checkpoint import CheckpointError, load_model
from hvp.models.networks import to_float_images, to_uint8_images
from hvp.models.readout import KIND as READOUT_KIND, READOUT_DIR, ReadoutNet, load_readout
from hvp.models.rssm import RSSM
from hvp.models.state_dynamics import KIND as STATE_DYNAMICS_KIND, STATE_DYNAMICS_DIR, StateDynamicsNet, \
    load_state_dynamics
from hvp.models.subgoal import KIND as SUBGOAL_KIND, SUBGOALS_DIR, SubgoalCVAE, load_subgoals
from hvp.models.temporal_distance import KIND as DISTANCE_KIND, TemporalDistanceNet, load_distance
from hvp.onnx_format import (BATCH_AXIS, FORMAT_VERSION, MANIFEST_FILE, META_CONFIG, META_FORMAT_VERSION, META_GRAPH,
                             META_KIND, META_SCHEMA_HASH, file_sha256, model_hash, schema_hash, session_io)

FLOAT_TOLERANCE = 1e-4  # max |onnxruntime - torch| of float outputs
UINT8_TOLERANCE = 1  # pixel levels: a 1e-7 float difference may round the other way
EXAMPLE_BATCH = 3  # > 1, so no exporter specializes the dynamic axis to a constant


class ExportError(RuntimeError):
    """An export failed or its graph does not reproduce the torch module."""


class StepFunction(nn.Module):
    """Wraps one function of `owner` as an exportable module (owner's parameters stay registered)."""

    def __init__(self, owner: nn.Module, function: Callable[..., Any]) -> None:
        super().__init__()
        self.owner = owner
        self.function = function

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.function(*inputs)


@dataclass(frozen=True)
class GraphSpec:
    """One graph: `module(*example_inputs)` -> a tensor or a tuple of tensors; axis 0 of all of them is the batch."""

    name: str
    module: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.example_inputs) != len(self.input_names):
            raise ValueError(f"GraphSpec {self.name!r}: expected one input name per example input, got "
                             f"{len(self.input_names)} names for {len(self.example_inputs)} inputs")
        if any(x.ndim == 0 or x.shape[0] < 2 for x in self.example_inputs):
            raise ValueError(f"GraphSpec {self.name!r}: example inputs need a batch axis 0 of size >= 2, got shapes "
                             f"{[tuple(x.shape) for x in self.example_inputs]}")


def robot_state_scale(model: RSSM) -> dict[str, list[float]]:
    """For a model that observes its robot state, the standardization its h holds that state in (buffers, not in the
    run's config): the ONNX runtime's observe_proprio applies it. {} for any other model."""
    if not model.config.observe_robot_state:
        return {}
    return {"proprio_mean": model.proprio_mean.tolist(), "proprio_std": model.proprio_std.tolist()}


# -- graphs of each model kind ---------------------------------------------------------------
def rssm_graphs(model: RSSM) -> list[GraphSpec]:
    """encoder, observe_step, imagine_step, decoder (and decoder_on_reference with reference_blend) of an RSSM
    (hvp.models.rssm); shapes in hvp.real.onnx_runtime."""
    config = model.config
    generator = torch.Generator().manual_seed(0)

    def example(*shape: int) -> torch.Tensor:
        return torch.randn(EXAMPLE_BATCH, *shape, generator=generator)

    def imagine_step(deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deter = model.transition(deter, stoch, action)
        return deter, model.mean(model.prior(deter))  # prior mean, as RSSM.rollout

    images = torch.randint(0, 256, (EXAMPLE_BATCH, *config.image_size, 3), dtype=torch.uint8, generator=generator)
    deter, stoch, action = example(config.deter_dim), example(config.stoch_dim), example(config.action_dim)
    with torch.no_grad():
        embedding = model.encoder(to_float_images(images))
    graphs = [
        GraphSpec("encoder", StepFunction(model, lambda frames: model.encoder(to_float_images(frames))),
                  (images,), ("images",), ("embedding",)),
        GraphSpec("observe_step", StepFunction(model, model.observe_step), (deter, stoch, action, embedding),
                  ("deter", "stoch", "action", "embedding"), ("deter_next", "stoch_next")),
        GraphSpec("imagine_step", StepFunction(model, imagine_step), (deter, stoch, action),
                  ("deter", "stoch", "action"), ("deter_next", "stoch_next")),
        GraphSpec("decoder", StepFunction(model, lambda latents: to_uint8_images(model.decode(latents))),
                  (example(config.latent_dim),), ("latents",), ("images",)),
    ]
    if model.blend is not None:  # reference_blend: predictions drawn on the last observed frame
        def decode_on_reference(latents: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
            return to_uint8_images(model.decode(latents, to_float_images(reference)))

        graphs.append(GraphSpec("decoder_on_reference", StepFunction(model, decode_on_reference),
                                (example(config.latent_dim), images), ("latents", "reference"), ("images",)))
    return graphs


def distance_graphs(net: TemporalDistanceNet) -> list[GraphSpec]:
    """temporal_distance: latents_a, latents_b float32 [B, D] -> steps float32 [B] (hvp.models.temporal_distance)."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(EXAMPLE_BATCH, net.config.latent_dim, generator=generator) for _ in range(2))
    steps = StepFunction(net, lambda latents_a, latents_b: torch.expm1(net(latents_a, latents_b)))  # as TorchDistance
    return [GraphSpec("temporal_distance", steps, (a, b), ("latents_a", "latents_b"), ("steps",))]


def subgoal_graphs(net: SubgoalCVAE) -> list[GraphSpec]:
    """subgoal_midpoint: start, goal float32 [B, D], codes float32 [B, C] -> midpoint float32 [B, D]
    (SubgoalCVAE.decode_midpoint; the recursive tree runs in numpy, hvp.subgoal_tree)."""
    generator = torch.Generator().manual_seed(0)
    # inputs on the latents' scale, so the check exercises the normalization as well as the network
    start, goal = (torch.randn(EXAMPLE_BATCH, net.config.latent_dim, generator=generator) * net.latent_std
                   + net.latent_mean for _ in range(2))
    codes = torch.randn(EXAMPLE_BATCH, net.config.code_dim, generator=generator)
    return [GraphSpec("subgoal_midpoint", StepFunction(net, net.decode_midpoint), (start, goal, codes),
                      ("start", "goal", "codes"), ("midpoint",))]


def readout_graphs(net: ReadoutNet) -> list[GraphSpec]:
    """state_readout: latents float32 [B, D] -> states float32 [B, S] (hvp.models.readout)."""
    generator = torch.Generator().manual_seed(0)
    # on the latents' scale, so the check exercises the normalization as well as the network
    latents = torch.randn(EXAMPLE_BATCH, net.config.latent_dim, generator=generator) * net.latent_std + net.latent_mean
    return [GraphSpec("state_readout", StepFunction(net, net.forward), (latents,), ("latents",), ("states",))]


def state_dynamics_graphs(net: StateDynamicsNet) -> list[GraphSpec]:
    """state_dynamics_step: states float32 [B, S], recent_actions float32 [B, K, A], actions float32 [B, A] -> next
    states float32 [B, S] (hvp.models.state_dynamics; rollouts loop over it in numpy, hvp.real.onnx_state_dynamics)."""
    generator = torch.Generator().manual_seed(0)
    config = net.config
    # inputs on the training data's scale, so the check exercises the normalization as well as the network
    inputs = torch.randn(EXAMPLE_BATCH, config.input_dim, generator=generator) * net.latent_std + net.latent_mean
    states, recent, actions = inputs.split([config.state_dim, config.history * config.action_dim, config.action_dim], 1)
    recent = recent.reshape(EXAMPLE_BATCH, config.history, config.action_dim)
    return [GraphSpec("state_dynamics_step", StepFunction(net, net.forward), (states, recent, actions),
                      ("states", "recent_actions", "actions"), ("next_states",))]


@dataclass(frozen=True)
class ExportModel:
    """One model of an export folder: its kind ("rssm", "temporal_distance", ...), config (JSON-ready) and graphs."""

    kind: str
    config: dict[str, Any]
    graphs: list[GraphSpec]


# -- export ------------------------------------------------------------------------------------
def export_graph(spec: GraphSpec, path: Path) -> None:
    """Write `spec` as one ONNX file at `path` (no metadata, no check: export_graphs adds both)."""
    # The dynamo exporter: the TorchScript one (dynamo=False) writes an invalid Transpose for
    # movedim(-1, -3) in to_float_images (perm {0, -1, 1, 2}), which onnxruntime refuses to load.
    batch = torch.export.Dim(BATCH_AXIS)
    try:
        torch.onnx.export(spec.module.eval(), spec.example_inputs, str(path), input_names=list(spec.input_names),
                          output_names=list(spec.output_names), dynamo=True, verbose=False,
                          external_data=False,  # one self-contained file per graph (fine below 2 GB)
                          # StepFunction.forward takes *inputs: one tuple of per-input specs
                          dynamic_shapes=(tuple({0: batch} for _ in spec.example_inputs),))
    except Exception as err:  # noqa: BLE001 - exporters raise many types; name the graph and keep the cause
        raise ExportError(f"graph {spec.name!r}: torch.onnx.export failed: {err}") from err


def _session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _max_difference(spec: GraphSpec, session: Any) -> float:
    """Largest |onnxruntime - torch| over the graph's outputs on its example inputs; raises ExportError past tolerance."""
    with torch.no_grad():
        expected = spec.module(*spec.example_inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = session.run(list(spec.output_names), {n: x.numpy() for n, x in zip(spec.input_names, spec.example_inputs)})
    worst = 0.0
    for name, want, have in zip(spec.output_names, expected, got):
        want = want.numpy()
        if want.shape != have.shape or want.dtype != have.dtype:
            raise ExportError(f"graph {spec.name!r} output {name!r}: expected {want.dtype}{list(want.shape)}, "
                              f"onnxruntime gave {have.dtype}{list(have.shape)}")
        difference = float(np.max(np.abs(want.astype(np.float64) - have.astype(np.float64)), initial=0.0))
        tolerance = UINT8_TOLERANCE if want.dtype == np.uint8 else FLOAT_TOLERANCE
        if not difference <= tolerance:
            raise ExportError(f"graph {spec.name!r} output {name!r}: onnxruntime differs from torch by {difference:.3g} "
                              f"(tolerance {tolerance}); the exporter mistranslated the module")
        worst = max(worst, difference)
    return worst


def _export_model(model: ExportModel, out_dir: Path, threads: int) -> dict[str, Any]:
    """Export, check and annotate one model's graphs; -> its manifest entry."""
    import onnx

    graphs_io, differences = {}, {}
    for spec in model.graphs:
        path = out_dir / f"{spec.name}.onnx"
        export_graph(spec, path)
        session = _session(path, threads)
        graphs_io[spec.name] = session_io(session)
        differences[spec.name] = _max_difference(spec, session)
    schema = schema_hash(model.config, graphs_io)
    metadata = {META_FORMAT_VERSION: str(FORMAT_VERSION), META_KIND: model.kind,
                META_CONFIG: json.dumps(model.config, sort_keys=True), META_SCHEMA_HASH: schema}
    graphs = {}
    for spec in model.graphs:
        path = out_dir / f"{spec.name}.onnx"
        proto = onnx.load(str(path))
        onnx.helper.set_model_props(proto, {**metadata, META_GRAPH: spec.name})
        onnx.save(proto, str(path))
        graphs[spec.name] = {"file": path.name, "sha256": file_sha256(path), **graphs_io[spec.name],
                             "max_abs_difference": differences[spec.name]}
    return {"config": model.config, "schema_hash": schema, "graphs": graphs}


def export_models(models: Sequence[ExportModel], out_dir: str | os.PathLike, threads: int = 1) -> dict[str, Any]:
    """Export every model's graphs into out_dir; writes and returns the manifest (hvp.onnx_format)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [spec.name for model in models for spec in model.graphs]
    if len(set(names)) != len(names) or len({model.kind for model in models}) != len(models):
        raise ValueError(f"models: expected distinct kinds and graph names, got {[m.kind for m in models]} / {names}")
    manifest_path = out_dir / MANIFEST_FILE
    manifest_path.unlink(missing_ok=True)  # a folder without a manifest is never loaded half-written
    entries = {model.kind: _export_model(model, out_dir, threads) for model in models}
    manifest = {"format_version": FORMAT_VERSION, "model_hash": model_hash(entries),
                "exporter": {"torch": torch.__version__, "dynamo": True}, "models": entries}
    temporary = manifest_path.with_name(f".{MANIFEST_FILE}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(temporary, manifest_path)
    return manifest


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, distance_dir: str | os.PathLike | None = None,
               threads: int = 1, subgoals_dir: str | os.PathLike | None = None,
               readout_dir: str | os.PathLike | None = None,
               state_dynamics_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Export the world model of run_dir (hvp train), its temporal-distance model, its subgoal generator, its
    state readout and its state dynamics, each if any, into out_dir.

    The distance model is read from `distance_dir`, else from RUN/distance when that holds one
    (hvp train-distance); the subgoal generator from `subgoals_dir`, else RUN/subgoals (hvp train-subgoals);
    the readout from `readout_dir`, else RUN/readout (hvp train-readout), with the task whose state cost it
    serves; the state dynamics from `state_dynamics_dir`, else RUN/state_dynamics (hvp train-state-dynamics).
    -> the manifest.
    """
    kind, world_model, run_config = load_model(run_dir)
    if kind != "rssm":
        raise CheckpointError(f"run_dir: {os.fspath(run_dir)!r} holds a {kind!r} model; export needs an 'rssm' run")
    models = [ExportModel("rssm", {**run_config["model"], **robot_state_scale(world_model)}, rssm_graphs(world_model))]
    for name, given, default, load, model_kind, graphs in (
            ("distance_dir", distance_dir, "distance", load_distance, DISTANCE_KIND, distance_graphs),
            ("subgoals_dir", subgoals_dir, SUBGOALS_DIR, load_subgoals, SUBGOAL_KIND, subgoal_graphs),
            ("readout_dir", readout_dir, READOUT_DIR, load_readout, READOUT_KIND, readout_graphs)):
        folder = Path(given) if given is not None else Path(run_dir) / default
        if given is None and not (folder / "config.json").is_file():
            continue
        loaded = load(folder)
        net = loaded.net
        if net.config.latent_dim != world_model.config.latent_dim:
            raise CheckpointError(f"{name}: the latent_dim {net.config.latent_dim} of {os.fspath(folder)!r} differs "
                                  f"from the world model's {world_model.config.latent_dim}; it was trained on another "
                                  "run")
        task = {"task": loaded.task} if getattr(loaded, "task", None) else {}  # the readout's, for its state cost
        models.append(ExportModel(model_kind, {**net.config.to_dict(), **task}, graphs(net)))
    folder = Path(state_dynamics_dir) if state_dynamics_dir is not None else Path(run_dir) / STATE_DYNAMICS_DIR
    if state_dynamics_dir is not None or (folder / "config.json").is_file():
        dynamics = load_state_dynamics(folder)
        if dynamics.action_dim != world_model.config.action_dim:
            raise CheckpointError(f"state_dynamics_dir: {os.fspath(folder)!r} predicts under {dynamics.action_dim}-dim "
                                  f"actions, the world model takes {world_model.config.action_dim}")
        task = {"task": dynamics.task} if dynamics.task else {}
        models.append(ExportModel(STATE_DYNAMICS_KIND, {**dynamics.net.config.to_dict(), **task},
                                  state_dynamics_graphs(dynamics.net)))
    return export_models(models, out_dir, threads=threads)
