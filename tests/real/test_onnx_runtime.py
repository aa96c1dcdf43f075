"""OnnxRuntime against TorchRuntime on the same random-weight debug RSSM: parity, contract errors,
folder integrity, and a torch-free LatentMPC step in a fresh interpreter."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hvp.onnx_format import MANIFEST_FILE
from hvp.real.onnx_runtime import ModelFolderError, OnnxRuntime

TOLERANCE = 1e-4
BATCHES = (1, 5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run dir, onnx dir) of a debug RSSM with random weights, exported once for the module."""
    import torch

    from hvp.models.checkpoint import save_model
    from hvp.models.config import RSSMConfig, TrainConfig
    from hvp.models.export import export_run
    from hvp.models.rssm import RSSM

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("runs") / "debug"
    save_model(run, "rssm", RSSM(RSSMConfig.preset("debug", action_dim=2)), TrainConfig.preset("debug"), {})
    export_run(run, run / "onnx")
    return run, run / "onnx"


@pytest.fixture(scope="module")
def runtimes(exported):
    from hvp.models.runtime import load_runtime

    run, onnx_dir = exported
    return load_runtime(str(run), device="cpu", threads=1), OnnxRuntime(onnx_dir, threads=1)


def random_images(runtime, batch, rng):
    return rng.integers(0, 256, (batch, *runtime.image_shape), dtype=np.uint8)


def random_actions(shape, rng):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def assert_close(torch_value, onnx_value):
    assert onnx_value.dtype == torch_value.dtype and onnx_value.shape == torch_value.shape
    assert np.max(np.abs(onnx_value - torch_value)) <= TOLERANCE


def test_export_wrote_a_manifest_with_hashes_and_exporter_checks(exported):
    manifest = json.loads((exported[1] / MANIFEST_FILE).read_text())
    # self-contained graph files (no external-data side files), each listed with its hash
    assert sorted(p.name for p in exported[1].iterdir()) == sorted(
        [MANIFEST_FILE, *(g["file"] for g in manifest["graphs"].values())])
    assert set(manifest["graphs"]) == {"encoder", "observe_step", "imagine_step", "decoder"}
    assert manifest["config"]["deter_dim"] == 16 and len(manifest["schema_hash"]) == 64
    # the exporter's own check on its example inputs
    assert all(g["max_abs_difference"] <= (1 if name == "decoder" else TOLERANCE)
               for name, g in manifest["graphs"].items())
    inputs = {arg[0]: arg for arg in manifest["graphs"]["observe_step"]["inputs"]}
    assert inputs["deter"] == ["deter", "tensor(float)", ["batch", 16]]


def test_runtime_reports_the_model_shape_threads_and_hash(runtimes):
    torch_runtime, onnx_runtime = runtimes
    for name in ("image_shape", "action_dim", "latent_dim"):
        assert getattr(onnx_runtime, name) == getattr(torch_runtime, name)
    assert onnx_runtime.model_hash == onnx_runtime.manifest["model_hash"]
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in onnx_runtime._sessions.values())


@pytest.mark.parametrize("batch", BATCHES)
def test_multi_step_observe_matches_torch(runtimes, batch):
    torch_runtime, onnx_runtime = runtimes
    rng = np.random.default_rng(batch)
    torch_state, onnx_state = torch_runtime.initial_state(batch), onnx_runtime.initial_state(batch)
    for _ in range(12):
        images, actions = random_images(torch_runtime, batch, rng), random_actions((batch, 2), rng)
        torch_state = torch_runtime.observe(torch_state, images, actions)
        onnx_state = onnx_runtime.observe(onnx_state, images, actions)
        for key in ("deter", "stoch"):
            assert_close(torch_state[key], onnx_state[key])
    assert np.abs(onnx_state["deter"]).max() > 0.05  # the belief moved: the comparison was not of zeros


@pytest.mark.parametrize("state_batch, count", [(1, 1), (1, 7), (7, 7)])
def test_multi_step_imagine_matches_torch(runtimes, state_batch, count):
    torch_runtime, onnx_runtime = runtimes
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
    manifest["config"]["min_std"] = 0.2
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match="hash to .*, the manifest says"):
        OnnxRuntime(folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ModelFolderError, match="has no manifest.json; write one with `hvp export"):
        OnnxRuntime(folder)


TORCH_FREE_SCRIPT = """
import sys, numpy as np
from hvp.planners import make_optimizer
from hvp.planners.costs import LatentDistance
from hvp.planners.mpc import LatentMPC, MPCConfig
from hvp.real.onnx_runtime import OnnxRuntime
runtime = OnnxRuntime(sys.argv[1], threads=1)
controller = LatentMPC(runtime, make_optimizer("cem", preset="debug"), LatentDistance("all"), MPCConfig.preset("debug"))
rng = np.random.default_rng(0)
state = controller.reset(rng.integers(0, 256, runtime.image_shape, dtype=np.uint8))
state, action = controller.act(state, {"image": rng.integers(0, 256, runtime.image_shape, dtype=np.uint8)})
assert action.shape == (2,) and state["plan_seconds"] > 0, (action, state["plan_seconds"])
print(sorted(m for m in ("torch", "hvp.models", "hvp.sim", "mujoco") if m in sys.modules))
"""


def test_latent_mpc_plans_over_onnx_runtime_without_importing_torch(exported):
    result = subprocess.run([sys.executable, "-c", TORCH_FREE_SCRIPT, str(exported[1])], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
