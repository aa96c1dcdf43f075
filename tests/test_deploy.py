"""hvp deploy against a real robot server on loopback: debug-size ONNX models drive the maze sims, flat and
under subgoals (generated or from graph nodes), torch-free."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from hvp.deploy import DeployError, check_robot
from hvp.real.client import RobotClient, RobotError
from hvp.real.onnx_runtime import OnnxRuntime

ENV = {**os.environ, "MUJOCO_GL": "egl", "PYTHONWARNINGS": "ignore"}
# Runs `hvp deploy` in a fresh interpreter and lists what a robot computer would lack that got imported.
DEPLOY_SCRIPT = """
import sys
from hvp.cli import main
code = main(sys.argv[1:])
print("heavy imports:", sorted(m for m in ("torch", "onnx", "mujoco", "gymnasium", "hvp.models") if m in sys.modules))
sys.exit(code)
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An exported debug RSSM with random weights, sized for maze-easy (64x64 images, 2 actions)."""
    import torch

    from hvp.models.checkpoint import save_model
    from hvp.models.config import RSSMConfig, TrainConfig
    from hvp.models.export import export_run
    from hvp.models.rssm import RSSM

    torch.manual_seed(1)
    run = tmp_path_factory.mktemp("runs") / "debug"
    save_model(run, "rssm", RSSM(RSSMConfig.preset("debug", image_size=(64, 64), action_dim=2)),
               TrainConfig.preset("debug"), {})
    export_run(run, run / "onnx")
    return run / "onnx"


@pytest.fixture(scope="module")
def hierarchical_model_dir(model_dir):
    """model_dir's run copied, with a random-weight debug temporal distance and subgoal generator, graph nodes
    (RUN/graph_nodes.safetensors: two 8-node episodes of random latents) and the whole run exported to RUN/onnx."""
    import torch

    from hvp.hierarchy import save_graph_nodes
    from hvp.models.export import export_run
    from hvp.models.subgoal import SubgoalConfig, SubgoalCVAE, save_subgoals
    from hvp.models.temporal_distance import TemporalDistanceConfig, TemporalDistanceNet, save_distance

    run = shutil.copytree(model_dir.parent, model_dir.parent.with_name("hierarchical"),
                          ignore=shutil.ignore_patterns("onnx"))
    latent_dim = OnnxRuntime(model_dir, warmup=False).latent_dim
    torch.manual_seed(2)
    save_distance(run / "distance", TemporalDistanceNet(TemporalDistanceConfig.preset("debug", latent_dim=latent_dim)))
    save_subgoals(run / "subgoals", SubgoalCVAE(SubgoalConfig.preset("debug", latent_dim=latent_dim)))
    latents = np.random.default_rng(0).standard_normal((16, latent_dim)).astype(np.float32)
    save_graph_nodes(run / "graph_nodes.safetensors", {"latents": latents, "episodes": np.repeat(np.int32([0, 1]), 8),
                                                       "frames": np.tile(np.arange(0, 24, 3, dtype=np.int32), 2)}, 3)
    export_run(run, run / "onnx")
    return run / "onnx"


def deploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DEPLOY_SCRIPT, "deploy", *args], capture_output=True, text=True,
                          timeout=120, env=ENV)


@pytest.mark.parametrize("task, hierarchy", [("maze-easy", ()),
                                             ("maze-hard", ("--hierarchical", "--subgoals", "generated")),
                                             ("maze-hard", ("--hierarchical", "--subgoals", "graph"))])
def test_deploy_runs_an_episode_through_a_robot_server_process(task, hierarchy, request, tmp_path):
    """Flat on maze-easy with the robot's goals; hierarchical on maze-hard toward a --goal image."""
    from PIL import Image

    model_dir = request.getfixturevalue("hierarchical_model_dir" if hierarchy else "model_dir")
    if hierarchy:
        Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(tmp_path / "goal.png")
        hierarchy = (*hierarchy, "--goal", str(tmp_path / "goal.png"))
    model_hash = OnnxRuntime(model_dir, threads=1, warmup=False).model_hash
    log, record = tmp_path / "events.jsonl", tmp_path / "record.json"
    server = subprocess.Popen([sys.executable, "-m", "hvp.cli", "robot-server", "--driver", f"sim:{task}",
                               "--bind", "tcp://127.0.0.1:*", "--model-hash", model_hash, "--event-log", str(log)],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        endpoint = server.stdout.readline().split(" listening on ")[1].split()[0]
        result = deploy("--connect", endpoint, "--model", str(model_dir), "--episodes", "2", "--seed", "4",
                        "--max-steps", "6", "--preset", "debug", "--cost", "latent", "--threads", "1", "--record", str(record),
                        *hierarchy)
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "heavy imports: []" in result.stdout  # the robot computer needs none of them
    assert "episode seed 4: 6 steps" in result.stdout and "episode seed 5: 6 steps" in result.stdout
    episodes = json.loads(record.read_text())["episodes"]
    assert [(e["seed"], e["steps"], len(e["applied"])) for e in episodes] == [(4, 6, 6), (5, 6, 6)]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["model_hash"] for e in events if e["event"] == "hello"] == [model_hash]
    assert [e["event"] for e in events if e["event"] != "applied"] == ["hello", "reset", "arm", "disarm", "reset", "arm",
                                                                       "disarm"]
    # what the deploy recorded as applied is what the robot applied, in order
    robot_applied = np.array([e["action"] for e in events if e["event"] == "applied"], np.float32)
    np.testing.assert_array_equal(robot_applied, np.concatenate([e["applied"] for e in episodes]))
    chosen = np.concatenate([e["actions"] for e in episodes])
    assert np.all(np.abs(chosen) <= 1) and np.abs(chosen).max() > 0.05  # the planner moved, within bounds
    for episode in episodes:  # the gate only limited each step's change to 0.5, from rest at arm
        applied = np.array(episode["applied"], np.float32)
        previous = np.concatenate([np.zeros((1, 2), np.float32), applied[:-1]])
        np.testing.assert_allclose(applied, np.clip(episode["actions"], previous - 0.5, previous + 0.5), atol=1e-6)


@pytest.fixture
def sim_server():
    """A RobotServer thread over maze-easy on an ephemeral loopback port that accepts only model hash 'other'."""
    from hvp.real.drivers import SimDriver
    from hvp.real.server import RobotServer
    from hvp.sim import make

    driver = SimDriver(make("maze-easy"), name="sim:maze-easy")
    server = RobotServer(driver, "tcp://127.0.0.1:*", model_hash="other")
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(timeout=5)
    server.close()
    driver.close()


def test_robot_refuses_a_planner_with_another_model(model_dir, sim_server):
    result = deploy("--connect", sim_server.endpoint, "--model", str(model_dir), "--preset", "debug", "--cost", "latent")
    assert result.returncode == 1
    assert "model_mismatch" in result.stderr and "expected 'other'" in result.stderr
    assert not sim_server.gate.armed and sim_server.driver.executed == []


def test_a_robot_with_another_camera_is_refused_before_arming(model_dir, sim_server):
    runtime = OnnxRuntime(model_dir, threads=1, warmup=False)
    with RobotClient(sim_server.endpoint) as robot:
        info = robot.handshake("other")
        check_robot(info, runtime)  # maze-easy fits the model
        with pytest.raises(DeployError, match=r"provides images \[32, 32, 3\] .* the model expects images \[64, 64, 3\]"):
            check_robot(type(info)(**{**info.__dict__, "image_shape": (32, 32, 3)}), runtime)
        with pytest.raises(RobotError):
            robot.send_action(np.zeros(2, np.float32))  # never armed: nothing moves


@pytest.mark.parametrize("subgoals, message", [
    ("generated", "has no subgoal_cvae and no temporal_distance model; train them (hvp train-distance RUN, "
                  "hvp train-subgoals RUN) and export the run again"),
    ("graph", "graph_nodes.safetensors is missing; pass the run's graph_nodes.safetensors (hvp deploy --graph-nodes)")])
def test_hierarchical_without_its_models_is_refused_before_connecting(model_dir, subgoals, message):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--cost", "latent", "--hierarchical",
                    "--subgoals", subgoals)
    assert result.returncode == 1 and message in result.stderr


# The hierarchical controller over onnxruntime on a real MuJoCo env, in a fresh interpreter: torch never loads.
HIERARCHICAL_SCRIPT = """
import sys
from hvp.deploy import mpc_controller, onnx_hierarchical, planning_cost
from hvp.real.onnx_runtime import OnnxRuntime
from hvp.sim import make
model_dir, subgoals = sys.argv[1:]
runtime = OnnxRuntime(model_dir, threads=1)
low = mpc_controller(runtime, planning_cost("temporal", model_dir, threads=1), "cem", "debug")
controller = onnx_hierarchical(low, model_dir, subgoals, preset="debug", threads=1)
with make("maze-hard") as env:
    obs, info = env.reset(seed=0)
    state = controller.reset(info["goal_image"], seed=0)
    for _ in range(4):
        state, action = controller.act(state, obs)
        obs, *_ = env.step(action)
print(type(controller).__name__, state["chains"][0].shape, state["segment_steps"], "torch" in sys.modules)
"""


# generated: a chain of K = 3 latents [3, D = 20]; graph: random node latents join neither start nor goal, so the
# path is empty and the controller steers at the goal
@pytest.mark.parametrize("subgoals, chain", [("generated", "(3, 20)"), ("graph", "(0, 20)")])
def test_hierarchical_controller_runs_on_onnxruntime_without_torch(hierarchical_model_dir, subgoals, chain):
    result = subprocess.run([sys.executable, "-c", HIERARCHICAL_SCRIPT, str(hierarchical_model_dir), subgoals],
                            capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    # planned once, pursued its first target for all 4 steps, and torch never loaded
    assert result.stdout.strip() == f"HierarchicalController {chain} 4 False"


def test_a_goal_image_of_another_size_is_refused_before_connecting(model_dir, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "goal.png")
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--goal", str(tmp_path / "goal.png"),
                    "--cost", "latent")
    assert result.returncode == 1
    assert "--goal: expected an image of shape (64, 64, 3) (the model's camera)" in result.stderr
    assert "(32, 32, 3)" in result.stderr


@pytest.fixture(scope="module")
def readout_model_dir(model_dir):
    """model_dir's run copied, with a random-weight debug state readout and state dynamics of maze-easy, exported to
    RUN/onnx."""
    import torch

    from hvp.models.export import export_run
    from hvp.models.readout import ReadoutConfig, ReadoutNet, save_readout
    from hvp.models.state_dynamics import StateDynamicsConfig, StateDynamicsNet, save_state_dynamics

    run = shutil.copytree(model_dir.parent, model_dir.parent.with_name("readout"), ignore=shutil.ignore_patterns("onnx"))
    torch.manual_seed(3)
    latent_dim = OnnxRuntime(model_dir, warmup=False).latent_dim
    save_readout(run / "readout", ReadoutNet(ReadoutConfig.preset("debug", latent_dim=latent_dim, state_dim=2)),
                 {"task": "maze-easy"})
    dynamics = StateDynamicsNet(StateDynamicsConfig.preset("debug", state_dim=2, action_dim=2))
    save_state_dynamics(run / "state_dynamics", dynamics, {"task": "maze-easy"})
    export_run(run, run / "onnx")
    return run / "onnx"


@pytest.mark.parametrize("imagine", [["latent"], ["state"], ["state", "--proprio"]])
def test_deploy_plans_with_the_exported_readout_and_its_task_cost(readout_model_dir, tmp_path, imagine):
    """The readout cost on the robot side: onnxruntime readout + maze-easy's state_cost, still without torch; plans
    imagined by the world model, or in the state by the exported state dynamics (with the robot's proprioception
    in place of the readout's ball position)."""
    model_hash = OnnxRuntime(readout_model_dir, threads=1, warmup=False).model_hash
    server = subprocess.Popen([sys.executable, "-m", "hvp.cli", "robot-server", "--driver", "sim:maze-easy",
                               "--bind", "tcp://127.0.0.1:*", "--model-hash", model_hash],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        endpoint = server.stdout.readline().split(" listening on ")[1].split()[0]
        result = deploy("--connect", endpoint, "--model", str(readout_model_dir), "--episodes", "1", "--max-steps", "4",
                        "--preset", "debug", "--cost", "readout", "--imagine", *imagine, "--threads", "1",
                        "--record", str(tmp_path / "r.json"))
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert result.returncode == 0, result.stderr[-2000:]
    heavy = result.stdout.split("heavy imports: ")[1].splitlines()[0]
    assert "torch" not in heavy and "hvp.models" not in heavy  # the task's state cost comes from hvp.sim alone
    actions = np.array(json.loads((tmp_path / "r.json").read_text())["episodes"][0]["actions"])
    assert actions.shape == (4, 2) and np.abs(actions).max() > 0.05


def test_the_readout_cost_needs_an_exported_readout(model_dir):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--cost", "readout")
    assert result.returncode == 1
    assert "has no state_readout model; train one (hvp train-readout RUN --data DATA.hdf5)" in result.stderr


def test_state_imagination_needs_its_exported_models_and_the_readout_cost(model_dir, readout_model_dir):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--cost", "readout",
                    "--imagine", "state")
    assert result.returncode == 1
    assert "has no state_dynamics and no state_readout model; train them" in result.stderr
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(readout_model_dir), "--imagine", "state")
    assert result.returncode == 1 and "use --cost readout without --hierarchical (got --cost temporal)" in result.stderr


def test_the_temporal_cost_needs_an_exported_distance_model(model_dir):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir))  # --cost temporal by default
    assert result.returncode == 1
    assert "has no temporal_distance model; train one (hvp train-distance RUN)" in result.stderr
