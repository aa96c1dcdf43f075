"""The bridge over real loopback sockets: robot server process, planner process, CURVE, torch-free import."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from conftest import serving
from hvp.real.client import BridgeTimeout, RobotClient
from hvp.real.keys import ClientCurve, ServerCurve, generate_keys
from hvp.real.protocol import robot_schema
from hvp.real.server import RobotServer

PYTHON = sys.executable
ENV = {**os.environ, "MUJOCO_GL": "egl"}


def proportional(obs, goal_xy):
    """A scripted controller: push the ball toward the goal, damped by its velocity."""
    position, velocity = obs["state"][:2], obs["state"][2:]
    return np.clip(3.0 * (goal_xy - position) - 0.5 * velocity, -1.0, 1.0).astype(np.float32)


def test_episode_through_robot_server_process_succeeds_and_is_recorded(tmp_path):
    from hvp.sim import make

    seed = 3
    reference = make("maze-easy")  # the same task and seed, to know the goal position
    reference.reset(seed=seed)
    goal_xy, goal_image = reference.unwrapped.goal.astype(np.float32), reference.unwrapped.goal_image.copy()
    reference.close()
    log = tmp_path / "events.jsonl"
    server = subprocess.Popen([PYTHON, "-m", "hvp.cli", "robot-server", "--driver", "sim:maze-easy", "--bind",
                               "tcp://127.0.0.1:*", "--event-log", str(log)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        endpoint = server.stdout.readline().split(" listening on ")[1].split()[0]
        with RobotClient(endpoint, handshake_timeout_s=10.0) as robot:
            info = robot.handshake("model-abc", robot_schema((64, 64, 3), 4, 2))
            assert (info.name, info.action_dim, info.control_hz) == ("sim:maze-easy", 2, 10.0)
            np.testing.assert_array_equal(robot.reset(seed=seed), goal_image)
            robot.arm()
            for step in range(60):
                applied = robot.send_action(proportional(robot.get_obs(), goal_xy))
                assert np.all(np.abs(applied.action) <= 1.0)
                if applied.info["done"]:
                    break
            assert applied.info["success"] and applied.info["step"] == step + 1
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=10)
    finally:
        server.kill()
        server.wait()
    assert "stopped after 1 episodes, 1 successful" in out
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(e["event"] == "applied" for e in events) == step + 1
    assert [e["event"] for e in events if e["event"] != "applied"] == ["hello", "reset", "arm", "disarm"]


CLIENT_SCRIPT = """
import sys, time, numpy as np
from hvp.real.client import RobotClient
robot = RobotClient(sys.argv[1])
robot.handshake()
robot.arm()
for i in range(10000):
    robot.get_obs()
    robot.send_action(np.full(2, 0.05, np.float32))
    if i == 3:
        print("running", flush=True)
    time.sleep(0.02)
"""


def test_planner_killed_mid_episode_robot_holds_within_3_periods_and_disarms_within_1s(maze_driver):
    with serving(maze_driver) as (server, events):
        planner = subprocess.Popen([PYTHON, "-c", CLIENT_SCRIPT, server.endpoint], stdout=subprocess.PIPE, text=True)
        try:
            assert planner.stdout.readline().strip() == "running"
        finally:
            planner.kill()
            planner.wait()
        time.sleep(1.3)
        last_applied = max(t for t, _ in maze_driver.executed)
        hold = next(e["t"] for e in events if e["event"] == "hold")
        disarm = next(e["t"] for e in events if e["event"] == "disarm")
    assert 0.3 <= hold - last_applied <= 0.3 + 0.05  # 3 periods at 10 Hz
    assert 1.0 <= disarm - last_applied <= 1.0 + 0.05
    assert not server.gate.armed
    assert len(maze_driver.executed) >= 4


def test_curve_refuses_unauthenticated_clients_and_serves_authorized_ones(tmp_path, maze_driver):
    keys, strangers = tmp_path / "keys", tmp_path / "strangers"
    generate_keys(keys)
    generate_keys(strangers)  # a well-formed pair the robot never authorized
    with serving(maze_driver, curve=ServerCurve.from_dir(keys)) as (server, events):
        for curve in (None, ClientCurve.from_dir(strangers), ClientCurve(strangers / "planner.key_secret", keys / "robot.key")):
            with RobotClient(server.endpoint, handshake_timeout_s=0.5, curve=curve) as robot:
                with pytest.raises(BridgeTimeout):
                    robot.handshake()
        assert maze_driver.executed == [] and events == []
        with RobotClient(server.endpoint, curve=ClientCurve.from_dir(keys)) as robot:
            robot.handshake()
            robot.arm()
            robot.get_obs()
            robot.send_action(np.array([0.1, 0.1], np.float32))
        assert len(maze_driver.executed) == 1


def test_plaintext_is_refused_off_loopback_unless_forced(maze_driver):
    with pytest.raises(ValueError, match="not loopback"):
        RobotServer(maze_driver, "tcp://0.0.0.0:5555")
    with pytest.raises(ValueError, match="--insecure-plaintext"):
        RobotClient("tcp://192.0.2.1:5555")


def test_keys_command_writes_private_secrets(tmp_path):
    from hvp.cli import main

    assert main(["keys", "--out", str(tmp_path)]) == 0
    assert oct((tmp_path / "robot.key_secret").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "authorized" / "planner.key").is_file()
    with pytest.raises(SystemExit, match="already exists"):
        main(["keys", "--out", str(tmp_path)])


def test_hvp_real_imports_without_torch_or_simulators():
    code = ("import sys, hvp.real, hvp.commands.robot_server, hvp.commands.keys; "
            "bad = [m for m in ('torch', 'hvp.sim', 'hvp.models', 'hvp.planners', 'mujoco') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([PYTHON, "-c", code], check=True)
