"""OnnxRuntime, OnnxDistance, OnnxSubgoalGenerator and OnnxReadout against their torch twins on random-weight debug models:
parity, contract errors, folder integrity, and a torch-free LatentMPC step in a fresh interpreter."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hvp.onnx_format import MANIFEST_FILE
from hvp.real.onnx_distance import OnnxDistance
from hvp.real.onnx_folder import ModelFolderError
from hvp.real.onnx_readout import OnnxReadout
from hvp.real.onnx_runtime import OnnxRuntime
from hvp.real.onnx_state_dynamics import OnnxStateDynamics
from hvp.real.onnx_subgoals import OnnxSubgoalGenerator

TOLERANCE = 1e-4
BATCHES = (1, 5)
# the scene categorical_runtimes' points find the foreground against
EMPTY_SCENE = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run dir, onnx dir) of a debug RSSM (a learned background, a reference blend, keypoints, a robot state),
    temporal-distance model and subgoal CVAE with random weights, exported once."""
    import torch

    from hvp.models.checkpoint import save_model
    from hvp.models.config import RSSMConfig, TrainConfig
    from hvp.models.export import export_run
    from hvp.models.readout import ReadoutConfig, ReadoutNet, save_readout
    from hvp.models.rssm import RSSM
    from hvp.models.state_dynamics import StateDynamicsConfig, StateDynamicsNet, save_state_dynamics
    from hvp.models.subgoal import SubgoalConfig, SubgoalCVAE, save_subgoals
    from hvp.models.temporal_distance import TemporalDistanceConfig, TemporalDistanceNet, save_distance

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("runs") / "debug"
    world_model = RSSM(RSSMConfig.preset("debug", action_dim=2, learned_background=True, reference_blend=True,
                                   keypoints=2, proprio_weight=1.0, proprio_dim=4,
                                   robot_points=True, observe_robot_state=True))  # every optional graph piece
    world_model.decoder.set_background(torch.rand(8, 3, 64, 64) - 0.5)  # the decoder graph must carry it too
    torch.nn.init.normal_(world_model.robot_step.weight, std=0.5)  # the robot state's step, not the identity
    torch.nn.init.normal_(world_model.robot_correction.weight, std=0.5)
    world_model.set_proprio_scale(torch.randn(32, 4) * 3 + 1)  # exported for observe_proprio
    save_model(run, "rssm", world_model, TrainConfig.preset("debug"), {})
    distance = TemporalDistanceNet(TemporalDistanceConfig.preset("debug", latent_dim=world_model.config.latent_dim))
    distance.set_normalization(torch.randn(64, world_model.config.latent_dim) * 2 + 0.5)
    save_distance(run / "distance", distance)
    subgoals = SubgoalCVAE(SubgoalConfig.preset("debug", latent_dim=world_model.config.latent_dim))
    subgoals.set_normalization(torch.randn(64, world_model.config.latent_dim) * 2 + 0.5)
    save_subgoals(run / "subgoals", subgoals)
    readout = ReadoutNet(ReadoutConfig.preset("debug", latent_dim=world_model.config.latent_dim, state_dim=5))
    readout.set_normalization(torch.randn(64, world_model.config.latent_dim) * 2 + 0.5)
    save_readout(run / "readout", readout, {"task": "push"})
    dynamics = StateDynamicsNet(StateDynamicsConfig.preset("debug", state_dim=5, action_dim=2))
    dynamics.set_normalization(torch.randn(64, dynamics.config.input_dim) * 2 + 0.5)
    dynamics.change_std.copy_(torch.rand(5) * 0.1 + 0.01)
    save_state_dynamics(run / "state_dynamics", dynamics, {"task": "push"})
    export_run(run, run / "onnx")  # finds RUN/distance, RUN/subgoals, RUN/readout and RUN/state_dynamics by itself
    return run, run / "onnx"


@pytest.fixture(scope="module")
def runtimes(exported):
    from hvp.models.runtime import load_runtime

    run, onnx_dir = exported
    return load_runtime(str(run), device="cpu", threads=1), OnnxRuntime(onnx_dir, threads=1)


@pytest.fixture(scope="module")
def categorical_runtimes(tmp_path_factory):
    """(torch, onnx) runtimes of a random-weight debug RSSM with a categorical latent and point dynamics that also
    correct its robot state (the pieces the first fixture's robot points exclude), its points found on the
    foreground of EMPTY_SCENE, exported alone."""
    import torch

    from hvp.models.checkpoint import save_model
    from hvp.models.config import RSSMConfig, TrainConfig
    from hvp.models.export import export_run
    from hvp.models.networks import to_float_images
    from hvp.models.rssm import RSSM
    from hvp.models.runtime import load_runtime

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("runs") / "categorical"
    config = RSSMConfig.preset("debug", action_dim=2, latent="categorical", classes=4, stoch_dim=8, keypoints=2,
                               point_dynamics=True, proprio_weight=1.0, proprio_dim=4, contact_from_points=True,
                               robot_step_fit=True, points_follow_robot=True, points_on_foreground=True)
    world_model = RSSM(config)
    torch.nn.init.normal_(world_model.point_step[-1].weight, std=0.5)  # points move, robot state corrected
    with torch.no_grad():  # ... and the points follow its free step
        world_model.robot_step.weight.add_(0.05 * torch.randn_like(world_model.robot_step.weight))
    torch.nn.init.normal_(world_model.robot_follow.weight)
    world_model.encoder.set_point_background(to_float_images(torch.from_numpy(EMPTY_SCENE))[None])
    save_model(run, "rssm", world_model, TrainConfig.preset("debug"), {})
    export_run(run, run / "onnx")
    return load_runtime(str(run), device="cpu", threads=1), OnnxRuntime(run / "onnx", threads=1)


@pytest.fixture(params=["gaussian", "categorical"])
def latent_runtimes(request):
    """The (torch, onnx) runtimes of each stochastic latent kind."""
    return request.getfixturevalue("runtimes" if request.param == "gaussian" else "categorical_runtimes")


def random_images(runtime, batch, rng):
    return rng.integers(0, 256, (batch, *runtime.image_shape), dtype=np.uint8)


def random_actions(shape, rng):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def assert_close(torch_value, onnx_value):
    assert onnx_value.dtype == torch_value.dtype and onnx_value.shape == torch_value.shape
    assert np.max(np.abs(onnx_value - torch_value)) <= TOLERANCE


def test_export_wrote_a_manifest_with_hashes_and_exporter_checks(exported):
    manifest = json.loads((exported[1] / MANIFEST_FILE).read_text())
    models = manifest["models"]
    graphs = {name: graph for model in models.values() for name, graph in model["graphs"].items()}
    # self-contained graph files (no external-data side files), each listed with its hash
    assert sorted(p.name for p in exported[1].iterdir()) == sorted([MANIFEST_FILE, *(g["file"] for g in graphs.values())])
    assert {kind: sorted(model["graphs"]) for kind, model in models.items()} == {
        "rssm": ["decoder", "decoder_on_reference", "encoder", "imagine_step", "observe_step"],
        "temporal_distance": ["temporal_distance"],
        "subgoal_cvae": ["subgoal_midpoint"], "state_readout": ["state_readout"],
        "state_dynamics": ["state_dynamics_step"]}
    assert models["state_readout"]["config"]["task"] == "push"
    assert models["rssm"]["config"]["deter_dim"] == 16 and len(models["rssm"]["schema_hash"]) == 64
    # the exporter's own check on its example inputs
    assert all(g["max_abs_difference"] <= (1 if name.startswith("decoder") else TOLERANCE)
               for name, g in graphs.items())
    inputs = {arg[0]: arg for arg in graphs["observe_step"]["inputs"]}
    assert inputs["deter"] == ["deter", "tensor(float)", ["batch", 16]]
    assert graphs["temporal_distance"]["outputs"] == [["steps", "tensor(float)", ["batch"]]]


def test_runtime_reports_the_model_shape_threads_and_hash(runtimes):
    torch_runtime, onnx_runtime = runtimes
    for name in ("image_shape", "action_dim", "latent_dim"):
        assert getattr(onnx_runtime, name) == getattr(torch_runtime, name)
    assert onnx_runtime.model_hash == onnx_runtime.manifest["model_hash"]
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in onnx_runtime._sessions.values())


@pytest.mark.parametrize("batch", BATCHES)
def test_multi_step_observe_matches_torch(latent_runtimes, batch):
    torch_runtime, onnx_runtime = latent_runtimes
    rng = np.random.default_rng(batch)
    torch_state, onnx_state = torch_runtime.initial_state(batch), onnx_runtime.initial_state(batch)
    for _ in range(12):
        images, actions = random_images(torch_runtime, batch, rng), random_actions((batch, 2), rng)
        torch_state = torch_runtime.observe(torch_state, images, actions)
        onnx_state = onnx_runtime.observe(onnx_state, images, actions)
        for key in ("deter", "stoch"):
            assert_close(torch_state[key], onnx_state[key])
    assert np.abs(onnx_state["deter"]).max() > 0.05  # the belief moved: the comparison was not of zeros


def test_observing_the_robot_state_matches_torch(runtimes, categorical_runtimes):
    torch_runtime, onnx_runtime = runtimes
    assert torch_runtime.observes_robot_state and onnx_runtime.observes_robot_state
    rng = np.random.default_rng(0)
    torch_state, onnx_state = torch_runtime.initial_state(3), onnx_runtime.initial_state(3)
    for _ in range(6):
        images, actions = random_images(torch_runtime, 3, rng), random_actions((3, 2), rng)
        proprio = rng.normal(size=(3, 4)).astype(np.float32)
        torch_state = torch_runtime.observe_proprio(torch_runtime.observe(torch_state, images, actions), proprio)
        onnx_state = onnx_runtime.observe_proprio(onnx_runtime.observe(onnx_state, images, actions), proprio)
        for key in ("deter", "stoch"):
            assert_close(torch_state[key], onnx_state[key])
    actions = random_actions((3, 5, 2), rng)
    assert_close(torch_runtime.imagine(torch_state, actions), onnx_runtime.imagine(onnx_state, actions))
    for runtime in runtimes:
        with pytest.raises(ValueError, match="proprio: expected finite"):
            runtime.observe_proprio(torch_state, np.full((3, 4), np.inf, np.float32))
    with pytest.raises(TypeError, match="trained without observe_robot_state"):
        categorical_runtimes[1].observe_proprio(categorical_runtimes[1].initial_state(1), np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("state_batch, count", [(1, 1), (1, 7), (7, 7)])
def test_multi_step_imagine_matches_torch(latent_runtimes, state_batch, count):
    torch_runtime, onnx_runtime = latent_runtimes
    rng = np.random.default_rng(count)
    state = torch_runtime.observe(torch_runtime.initial_state(state_batch), random_images(torch_runtime, state_batch, rng),
                                  random_actions((state_batch, 2), rng))
    actions = random_actions((count, 12, 2), rng)
    expected, got = torch_runtime.imagine(state, actions), onnx_runtime.imagine(state, actions)
    assert_close(expected, got)
    assert np.abs(np.diff(got, axis=1)).max() > 1e-3  # the rollout changes over the horizon


@pytest.mark.parametrize("batch", BATCHES)
def test_encode_and_decode_match_torch(runtimes, batch):
    torch_runtime, onnx_runtime = runtimes
    rng = np.random.default_rng(10 + batch)
    images = random_images(torch_runtime, batch, rng)
    assert_close(torch_runtime.encode(images), onnx_runtime.encode(images))
    latents = rng.normal(size=(batch, 3, torch_runtime.latent_dim)).astype(np.float32)
    expected, got = torch_runtime.decode(latents), onnx_runtime.decode(latents)
    assert got.shape == expected.shape == (batch, 3, *torch_runtime.image_shape) and got.dtype == np.uint8
    # uint8 outputs: a float difference of 1e-7 may round a pixel the other way, never more
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99


def test_points_found_on_the_foreground_match_torch(categorical_runtimes):
    """Frames of the empty scene with one patch changed: the exported encoder finds its points among the same cells."""
    import torch

    from hvp.models.networks import to_float_images

    torch_runtime, onnx_runtime = categorical_runtimes
    rng = np.random.default_rng(12)
    images = np.repeat(EMPTY_SCENE[None], 3, 0)
    for image, (row, column) in zip(images, [(4, 8), (30, 40), (52, 2)]):
        image[row:row + 6, column:column + 6] = rng.integers(0, 256, (6, 6, 3))
    assert_close(torch_runtime.encode(images), onnx_runtime.encode(images))
    encoder = torch_runtime.model.encoder
    with torch.no_grad():
        cells = encoder.foreground_cells(to_float_images(torch.from_numpy(images)))
    assert 0 < float(cells.sum()) < 0.1 * cells.numel()  # the gate is neither all on nor all off


@pytest.mark.parametrize("batch", BATCHES)
def test_decode_on_a_reference_matches_torch(runtimes, categorical_runtimes, batch):
    torch_runtime, onnx_runtime = runtimes
    assert torch_runtime.draws_on_reference and onnx_runtime.draws_on_reference
    rng = np.random.default_rng(20 + batch)
    latents = rng.normal(size=(batch, 3, torch_runtime.latent_dim)).astype(np.float32)
    reference = rng.integers(0, 256, (batch, 3, *torch_runtime.image_shape), dtype=np.uint8)
    expected, got = torch_runtime.decode(latents, reference), onnx_runtime.decode(latents, reference)
    assert got.shape == expected.shape and got.dtype == np.uint8
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    assert not np.array_equal(got, onnx_runtime.decode(latents))  # the reference shows through
    assert not any(runtime.draws_on_reference for runtime in categorical_runtimes)  # exported without a blend
    for runtime in categorical_runtimes:
        with pytest.raises(ValueError, match="trained without reference_blend"):
            runtime.decode(np.zeros((1, runtime.latent_dim), np.float32), np.zeros((1, 64, 64, 3), np.uint8))


BAD_CALLS = [
    ("observe", lambda rt: (rt.initial_state(2), np.zeros((2, 64, 64, 3), np.float32), np.zeros((2, 2), np.float32))),
    ("observe", lambda rt: (rt.initial_state(2), np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 2), np.float32))),
    ("observe", lambda rt: (rt.initial_state(2), np.zeros((2, 64, 64, 3), np.uint8), np.zeros((3, 2), np.float32))),
    ("observe", lambda rt: (rt.initial_state(2), np.zeros((2, 64, 64, 3), np.uint8), [[0.0, 0.0]] * 2)),
    ("observe", lambda rt: ({"deter": np.zeros((2, 16), np.float32)}, np.zeros((2, 64, 64, 3), np.uint8),
                            np.zeros((2, 2), np.float32))),
    ("imagine", lambda rt: (rt.initial_state(3), np.zeros((4, 5, 2), np.float32))),
    ("imagine", lambda rt: (rt.initial_state(1), np.zeros((4, 5, 3), np.float32))),
    ("imagine", lambda rt: ({"deter": np.zeros((1, 16), np.float64), "stoch": np.zeros((1, 4), np.float32)},
                            np.zeros((4, 5, 2), np.float32))),
    ("decode", lambda rt: (np.zeros((2, 19), np.float32),)),
    ("decode", lambda rt: (np.zeros(20, np.float32),)),
    ("decode", lambda rt: (np.zeros((2, 20), np.float32), np.zeros((3, 64, 64, 3), np.uint8))),
    ("decode", lambda rt: (np.zeros((2, 20), np.float32), np.zeros((2, 64, 64, 3), np.float32))),
    ("encode", lambda rt: (np.zeros((64, 64, 3), np.uint8),)),
    ("initial_state", lambda rt: (0,)),
    ("latent", lambda rt: ({"deter": np.zeros((1, 16), np.float32), "stoch": np.zeros((1, 5), np.float32)},)),
]


@pytest.mark.parametrize("method, arguments", BAD_CALLS)
def test_bad_inputs_raise_the_same_errors_as_torch(runtimes, method, arguments):
    errors = []
    for runtime in runtimes:
        with pytest.raises((TypeError, ValueError)) as caught:
            getattr(runtime, method)(*arguments(runtime))
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def test_export_refuses_a_graph_that_does_not_reproduce_its_module(tmp_path):
    import torch

    from hvp.models.export import ExportError, ExportModel, GraphSpec, StepFunction, export_models

    layer = torch.nn.Linear(4, 4)
    noisy = StepFunction(layer, lambda x: layer(x) + torch.rand_like(x))  # torch and onnxruntime draw differently
    spec = GraphSpec("noisy", noisy, (torch.zeros(3, 4),), ("x",), ("y",))
    with pytest.raises(ExportError, match="graph 'noisy' output 'y': onnxruntime differs from torch by"):
        export_models([ExportModel("probe", {}, [spec])], tmp_path)
    assert not (tmp_path / MANIFEST_FILE).exists()


def test_export_refuses_a_state_dynamics_of_other_actions(exported, tmp_path):
    from hvp.models.checkpoint import CheckpointError
    from hvp.models.export import export_run
    from hvp.models.state_dynamics import StateDynamicsConfig, StateDynamicsNet, save_state_dynamics

    dynamics = tmp_path / "state_dynamics"
    save_state_dynamics(dynamics, StateDynamicsNet(StateDynamicsConfig.preset("debug", state_dim=5, action_dim=3)),
                        {"task": "push"})
    with pytest.raises(CheckpointError, match="predicts under 3-dim actions, the world model takes 2"):
        export_run(exported[0], tmp_path / "onnx", state_dynamics_dir=dynamics)


@pytest.fixture(scope="module")
def twins(exported):
    """{"distance" | "subgoals" | "readout" | "state_dynamics": (torch model, onnxruntime model)} of the run and its
    export."""
    from hvp.models.readout import load_readout
    from hvp.models.state_dynamics import load_state_dynamics
    from hvp.models.subgoal import load_subgoals
    from hvp.models.temporal_distance import load_distance

    run, onnx_dir = exported
    return {"distance": (load_distance(run / "distance"), OnnxDistance(onnx_dir, threads=1)),
            "subgoals": (load_subgoals(run / "subgoals"), OnnxSubgoalGenerator(onnx_dir, threads=1)),
            "readout": (load_readout(run / "readout"), OnnxReadout(onnx_dir, threads=1)),
            "state_dynamics": (load_state_dynamics(run / "state_dynamics"), OnnxStateDynamics(onnx_dir, threads=1))}


def same_error(models, call) -> str:
    """The message of the ValueError that `call(model)` raises, asserted equal for the torch and onnxruntime model."""
    errors = []
    for model in models:
        with pytest.raises(ValueError) as caught:
            call(model)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    return errors[0]


@pytest.mark.parametrize("count, targets", [(1, 1), (6, 1), (6, 6)])
def test_temporal_distance_matches_torch(twins, count, targets):
    torch_distance, onnx_distance = twins["distance"]
    rng = np.random.default_rng(count + targets)
    a = rng.normal(0.5, 2.0, (count, 20)).astype(np.float32)
    b = rng.normal(0.5, 2.0, (targets, 20)).astype(np.float32)
    expected, got = torch_distance.steps(a, b), onnx_distance.steps(a, b)
    assert_close(expected, got)
    assert onnx_distance.max_steps == torch_distance.max_steps and np.all((got >= 0) & (got <= got.dtype.type(10)))
    if count > 1:
        assert np.ptp(got) > 0.01  # the predictions differ between pairs: the comparison is not of constants


@pytest.mark.parametrize("a_shape, b_shape", [((3, 19), (1, 20)), ((3, 20), (2, 20)), ((20,), (1, 20))])
def test_temporal_distance_bad_inputs_raise_the_same_errors_as_torch(twins, a_shape, b_shape):
    same_error(twins["distance"],
               lambda model: model.steps(np.zeros(a_shape, np.float32), np.zeros(b_shape, np.float32)))


@pytest.mark.parametrize("count, subgoals", [(1, 1), (1, 7), (64, 3)])
def test_subgoal_generator_matches_torch(twins, count, subgoals):
    torch_generator, onnx_generator = twins["subgoals"]
    rng = np.random.default_rng(count + subgoals)
    start, goal = rng.normal(0.5, 2.0, (2, 20)).astype(np.float32)
    codes = rng.standard_normal((count, subgoals, onnx_generator.code_dim)).astype(np.float32)
    expected, got = torch_generator.propose(start, goal, codes), onnx_generator.propose(start, goal, codes)
    assert_close(expected, got)
    assert got.shape == (count, subgoals, 20) and np.ptp(got) > 0.01  # not a comparison of constants


@pytest.mark.parametrize("codes_shape, message", [((2, 3, 5), "codes: expected shape"),
                                                   ((2, 2, 8), "subgoals: expected K")])
def test_subgoal_generator_bad_inputs_raise_the_same_errors_as_torch(twins, codes_shape, message):
    zero = np.zeros(20, np.float32)
    error = same_error(twins["subgoals"], lambda model: model.propose(zero, zero, np.zeros(codes_shape, np.float32)))
    assert error.startswith(message)


@pytest.mark.parametrize("count", [1, 7])
def test_state_readout_matches_torch_and_keeps_its_task(twins, count):
    torch_readout, onnx_readout = twins["readout"]
    latents = np.random.default_rng(count).normal(0.5, 2.0, (count, 20)).astype(np.float32)
    expected, got = torch_readout.states(latents), onnx_readout.states(latents)
    assert_close(expected, got)
    assert got.shape == (count, 5) and np.ptp(got) > 0.01  # not a comparison of constants
    assert onnx_readout.task == torch_readout.task == "push"


@pytest.mark.parametrize("shape, dtype", [((3, 19), np.float32), ((20,), np.float32), ((3, 20), np.float64)])
def test_state_readout_bad_inputs_raise_the_same_errors_as_torch(twins, shape, dtype):
    errors = []
    for model in twins["readout"]:
        with pytest.raises((ValueError, TypeError)) as caught:
            model.states(np.zeros(shape, dtype))
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and errors[0].startswith("latents: expected")


@pytest.mark.parametrize("count", [1, 6])
def test_state_dynamics_rollouts_match_torch_over_many_steps(twins, count):
    torch_dynamics, onnx_dynamics = twins["state_dynamics"]
    rng = np.random.default_rng(count)
    states = rng.normal(0.5, 2.0, (count, 5)).astype(np.float32)
    recent = rng.uniform(-1, 1, (count, 2, 2)).astype(np.float32)
    actions = rng.uniform(-1, 1, (count, 12, 2)).astype(np.float32)
    expected, got = torch_dynamics.rollout(states, recent, actions), onnx_dynamics.rollout(states, recent, actions)
    assert_close(expected, got)
    assert got.shape == (count, 12, 5) and np.ptp(got[:, -1] - got[:, 0]) > 0.01  # the states move, and differently
    assert onnx_dynamics.task == torch_dynamics.task == "push" and onnx_dynamics.history == 2
    assert "recent_actions: expected" in same_error(twins["state_dynamics"],
                                                    lambda model: model.rollout(states, recent[:, :1], actions))


def test_changed_or_foreign_graph_files_are_refused(exported, tmp_path):
    _, onnx_dir = exported
    folder = tmp_path / "onnx"
    shutil.copytree(onnx_dir, folder)
    (folder / "decoder.onnx").write_bytes((folder / "decoder.onnx").read_bytes() + b"\0")
    with pytest.raises(ModelFolderError, match="decoder.onnx: sha256 .* differs from the manifest"):
        OnnxRuntime(folder)
    # a graph from another export passes its file hash once the manifest is edited, but not the schema check
    shutil.copy(onnx_dir / "decoder.onnx", folder / "decoder.onnx")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["models"]["rssm"]["config"]["min_std"] = 0.2
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="the rssm graphs' inputs and outputs hash to .*, the manifest says"):
        OnnxRuntime(folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ModelFolderError, match="has no manifest.json; write one with `hvp export"):
        OnnxRuntime(folder)


TORCH_FREE_SCRIPT = """
import sys, numpy as np
from hvp.planners import make_optimizer
from hvp.planners.costs import TemporalDistance
from hvp.planners.mpc import LatentMPC, MPCConfig
from hvp.real.onnx_distance import OnnxDistance
from hvp.real.onnx_runtime import OnnxRuntime
runtime, distance = OnnxRuntime(sys.argv[1], threads=1), OnnxDistance(sys.argv[1], threads=1)
assert runtime.observes_robot_state  # the fixture's model takes the robot's measured state: proprio=True
controller = LatentMPC(runtime, make_optimizer("cem", preset="debug"), TemporalDistance(distance, "all"),
                       MPCConfig.preset("debug", proprio=True))
rng = np.random.default_rng(0)
state = controller.reset(rng.integers(0, 256, runtime.image_shape, dtype=np.uint8))
state, action = controller.act(state, {"image": rng.integers(0, 256, runtime.image_shape, dtype=np.uint8),
                                       "state": rng.normal(size=4).astype(np.float32)})
assert action.shape == (2,) and state["plan_seconds"] > 0, (action, state["plan_seconds"])
print(sorted(m for m in ("torch", "hvp.models", "hvp.sim", "mujoco") if m in sys.modules))
"""


def test_latent_mpc_plans_over_onnx_runtime_without_importing_torch(exported):
    result = subprocess.run([sys.executable, "-c", TORCH_FREE_SCRIPT, str(exported[1])], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
