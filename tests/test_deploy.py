"""hvp deploy against a real robot server on loopback: a debug-size ONNX model drives the maze-easy sim."""
from __future__ import annotations

import json
import os
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


def deploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DEPLOY_SCRIPT, "deploy", *args], capture_output=True, text=True,
                          timeout=120, env=ENV)


def test_deploy_runs_an_episode_through_a_robot_server_process(model_dir, tmp_path):
    model_hash = OnnxRuntime(model_dir, threads=1, warmup=False).model_hash
    log, record = tmp_path / "events.jsonl", tmp_path / "record.json"
    server = subprocess.Popen([sys.executable, "-m", "hvp.cli", "robot-server", "--driver", "sim:maze-easy",
                               "--bind", "tcp://127.0.0.1:*", "--model-hash", model_hash, "--event-log", str(log)],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        endpoint = server.stdout.readline().split(" listening on ")[1].split()[0]
        result = deploy("--connect", endpoint, "--model", str(model_dir), "--episodes", "2", "--seed", "4",
                        "--max-steps", "6", "--preset", "debug", "--cost", "latent", "--threads", "1", "--record", str(record))
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
    assert np.all(np.abs(robot_applied - chosen) <= 0.5 + 1e-6)  # the gate at most limited the per-step change


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


def test_hierarchical_is_reported_as_not_yet_available(model_dir):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--hierarchical")
    assert result.returncode == 2 and "--hierarchical is not yet available" in result.stdout


def test_a_goal_image_of_another_size_is_refused_before_connecting(model_dir, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "goal.png")
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir), "--goal", str(tmp_path / "goal.png"),
                    "--cost", "latent")
    assert result.returncode == 1
    assert "--goal: expected an image of shape (64, 64, 3) (the model's camera)" in result.stderr
    assert "(32, 32, 3)" in result.stderr


def test_the_temporal_cost_needs_an_exported_distance_model(model_dir):
    result = deploy("--connect", "tcp://127.0.0.1:1", "--model", str(model_dir))  # --cost temporal by default
    assert result.returncode == 1
    assert "has no temporal_distance model; train one (hvp train-distance RUN)" in result.stderr
