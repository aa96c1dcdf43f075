"""hvp record against a real robot-server process (sim:maze-easy with a domain shift) on loopback."""
import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from hvp.cli import main
from hvp.data import load_dataset

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def robot_server(tmp_path):
    """`hvp robot-server --driver sim:maze-easy --shift mild` in its own process; yields (endpoint, event log path,
    episode log path)."""
    endpoint, events = f"tcp://127.0.0.1:{_free_port()}", tmp_path / "events.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "hvp.cli", "robot-server", "--driver", "sim:maze-easy",
                                "--shift", "mild", "--bind", endpoint, "--event-log", str(events),
                                "--episode-log", str(tmp_path / "episodes.jsonl")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert "listening on" in line, line + process.stdout.read()
        yield endpoint, events, tmp_path / "episodes.jsonl"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _applied_events(path) -> list[list[float]]:
    return [event["action"] for event in map(json.loads, path.read_text().splitlines()) if event["event"] == "applied"]


def test_scripted_recording_stores_frames_applied_actions_and_robot_metadata(robot_server, tmp_path):
    endpoint, events, _ = robot_server
    out = tmp_path / "real.hdf5"
    assert main(["record", "--connect", endpoint, "--episodes", "2", "--max-steps", "6", "--out", str(out),
                 "--shift", "mild", "--seed", "3"]) == 0
    dataset = load_dataset(out)
    assert len(dataset) == 2
    robot = dataset.env_args["robot"]
    assert (dataset.env_args["env_name"], robot["shift"], robot["action_dim"]) == ("sim:maze-easy", "mild", 2)
    assert robot["control_hz"] > 0 and robot["limits"]["low"] == [-1.0, -1.0]
    for episode in dataset.episodes:
        assert episode["image"].shape == (7, 64, 64, 3) and episode["image"].dtype == np.uint8
        assert episode["state"].shape == (7, 4) and np.isnan(episode["true_state"]).all()
        assert not episode["action"][-1].any() and np.abs(episode["action"]).max() <= 1.0
        assert np.abs(np.diff(episode["image"].astype(int), axis=0)).sum() > 0  # the robot moved
    assert [e["seed"] for e in dataset.episodes] == [3, 4]
    # what was stored is what the robot says it applied, in order
    stored = np.concatenate([e["action"][:-1] for e in dataset.episodes])
    time.sleep(0.2)  # the event log is written line-buffered by the other process
    np.testing.assert_allclose(stored, np.array(_applied_events(events), np.float32), atol=1e-6)


def test_rerun_records_only_missing_episodes_and_replay_repeats_actions(robot_server, tmp_path):
    endpoint, _, _ = robot_server
    out, replayed = tmp_path / "real.hdf5", tmp_path / "replayed.hdf5"
    assert main(["record", "--connect", endpoint, "--episodes", "1", "--max-steps", "5", "--out", str(out)]) == 0
    first = load_dataset(out).episodes[0]
    assert main(["record", "--connect", endpoint, "--episodes", "2", "--max-steps", "5", "--out", str(out)]) == 0
    both = load_dataset(out).episodes
    assert len(both) == 2 and np.array_equal(both[0]["image"], first["image"])
    assert main(["record", "--connect", endpoint, "--episodes", "2", "--policy", "replay", "--replay", str(out),
                 "--out", str(replayed)]) == 0
    for source, copy in zip(both, load_dataset(replayed).episodes):
        np.testing.assert_allclose(copy["action"], source["action"], atol=1e-6)
        assert len(copy["image"]) == len(source["image"])


def test_robot_keeps_the_true_state_in_its_episode_log_and_labels_the_recording_with_its_shift(robot_server, tmp_path):
    endpoint, _, episode_log = robot_server
    out = tmp_path / "real.hdf5"
    assert main(["record", "--connect", endpoint, "--episodes", "2", "--max-steps", "4", "--out", str(out)]) == 0
    dataset = load_dataset(out)
    assert dataset.env_args["robot"]["shift"] == "mild"  # the robot's handshake label; no --shift given
    assert all(np.isnan(episode["true_state"]).all() for episode in dataset.episodes)  # none crossed the bridge
    time.sleep(0.2)  # written line-buffered by the other process
    final = {}
    for record in map(json.loads, episode_log.read_text().splitlines()):
        final[record["episode"]] = record  # the last line of an episode is its final record
    assert [final[i]["seed"] for i in sorted(final)] == [0, 1]
    for record in final.values():
        assert record["shift"] == "mild" and record["steps"] == 4 and len(record["true_state"]) == 5
        assert record["final_distance"] >= record["min_distance"] >= 0


def test_record_refuses_missing_policy_inputs():
    with pytest.raises(SystemExit, match="--replay"):
        main(["record", "--connect", "tcp://127.0.0.1:1", "--policy", "replay", "--out", "/tmp/never.hdf5"])
    with pytest.raises(SystemExit, match="--model"):
        main(["record", "--connect", "tcp://127.0.0.1:1", "--policy", "planner", "--out", "/tmp/never.hdf5"])
