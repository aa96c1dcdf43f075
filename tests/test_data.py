"""Trajectories on disk: round trip, atomic writes under SIGKILL, resume, bad files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from hvp import data
from hvp.simulate import simulate


def fake_episode(rng: np.random.Generator, frames: int = 12) -> dict:
    return {"image": rng.integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8),
            "state": rng.normal(size=(frames, 4)).astype(np.float32),
            "true_state": rng.normal(size=(frames, 2)).astype(np.float32),
            "action": rng.uniform(-1, 1, (frames, 2)).astype(np.float32),
            "goal_image": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "success": True, "seed": 7}


def test_round_trip_is_exact_and_robomimic_shaped(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [fake_episode(rng, 10 + i) for i in range(3)]
    path = data.save_trajectories(episodes, tmp_path / "d.hdf5", env_args={"env_name": "fake"})
    with h5py.File(path) as handle:
        assert sorted(handle["data"]) == ["demo_0", "demo_1", "demo_2"]
        assert handle["data/demo_1"].attrs["num_samples"] == 11
        assert handle["data/demo_1/obs/image"].dtype == np.uint8
        assert handle["data/demo_1/obs/image"].compression == "gzip"
        assert handle["data/demo_1/dones"][-1] == 1
        assert handle["data"].attrs["total"] == 33
    loaded = data.load_dataset(path)
    assert loaded.env_args == {"env_name": "fake"} and len(loaded) == 3
    for original, back in zip(episodes, loaded.episodes):
        for key in ("image", "state", "true_state", "action", "goal_image"):
            np.testing.assert_array_equal(original[key], back[key])
    # appending keeps what was there
    data.save_trajectories([fake_episode(rng)], path, env_args={"env_name": "fake"})
    assert len(data.load_dataset(path)) == 4


def test_windows_align_actions_with_frames(tmp_path):
    rng = np.random.default_rng(1)
    episode = fake_episode(rng, 20)
    episode["state"][:, 0] = np.arange(20)
    episode["action"][:, 0] = np.arange(20) + 0.5  # action t is taken at frame t
    dataset = data.TrajectoryDataset([episode], {})
    windows = dataset.sample_windows(np.random.default_rng(0), batch=8, length=6)
    assert windows["image"].shape == (8, 6, 16, 16, 3)
    np.testing.assert_allclose(windows["action"][..., 0], windows["state"][..., 0] + 0.5)
    with pytest.raises(data.DatasetError, match="no episode has 50 frames"):
        dataset.sample_windows(np.random.default_rng(0), batch=1, length=50)


def test_split_by_episode():
    rng = np.random.default_rng(2)
    dataset = data.TrajectoryDataset([fake_episode(rng) for _ in range(10)], {"env_name": "x"})
    train, held = dataset.split(0.2, seed=0)
    assert (len(train), len(held)) == (8, 2) and held.env_args == {"env_name": "x"}
    with pytest.raises(data.DatasetError, match="split"):
        dataset.split(1.5)


def test_datasets_of_one_task_combine_in_order(tmp_path):
    rng = np.random.default_rng(3)
    first, second = ([fake_episode(rng) for _ in range(n)] for n in (2, 3))
    data.save_trajectories(first, tmp_path / "a.hdf5", {"env_name": "push"})
    data.save_trajectories(second, tmp_path / "b.hdf5", {"env_name": "push"})
    data.save_trajectories(first, tmp_path / "c.hdf5", {"env_name": "maze-easy"})
    combined = data.load_datasets([tmp_path / "a.hdf5", tmp_path / "b.hdf5"])
    assert len(combined) == 5 and combined.env_args["env_name"] == "push"
    for loaded, saved in zip(combined.episodes, first + second):
        np.testing.assert_array_equal(loaded["image"], saved["image"])
    with pytest.raises(data.DatasetError, match="different tasks"):
        data.load_datasets([tmp_path / "a.hdf5", tmp_path / "c.hdf5"])
    with pytest.raises(data.DatasetError, match="at least one"):
        data.load_datasets([])


def test_bad_files_and_episodes_are_named(tmp_path):
    with pytest.raises(data.DatasetError, match="no dataset at"):
        data.load_dataset(tmp_path / "missing.hdf5")
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"this is not hdf5")
    with pytest.raises(data.DatasetError, match="cannot read dataset"):
        data.load_dataset(junk)
    with h5py.File(tmp_path / "other.hdf5", "w") as handle:
        handle.create_group("data/demo_0").create_dataset("actions", data=np.zeros((3, 2)))
    with pytest.raises(data.DatasetError, match="not in hvp's layout"):
        data.load_dataset(tmp_path / "other.hdf5")
    episode = fake_episode(np.random.default_rng(3))
    episode["action"] = episode["action"][:-1]
    with pytest.raises(data.DatasetError, match=r"episode\['action'\] has 11 rows, expected 12"):
        data.save_trajectories([episode], tmp_path / "bad.hdf5")


def test_simulate_is_reproducible_across_worker_counts():
    one = simulate("maze-easy", "explore", 3, workers=1, seed=4, progress=False)
    two = simulate("maze-easy", "explore", 3, workers=2, seed=4, progress=False)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["action"], b["action"])
    assert len(one[0]["image"]) == len(one[0]["action"]) and not one[0]["action"][-1].any()


def test_killed_collection_keeps_earlier_episodes_and_resumes(tmp_path):
    out = tmp_path / "maze.hdf5"
    command = [sys.executable, "-m", "hvp.cli", "collect", "--env", "maze-hard", "--episodes", "200",
               "--workers", "1", "--seed", "11", "--out", str(out)]
    writer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "MUJOCO_GL": "egl"})
    try:
        deadline = time.monotonic() + 60
        while len(data.part_indices(out)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait()
    saved = data.part_indices(out)
    assert len(saved) >= 3 and not out.exists(), "killed before finishing: only shards, no merged file"
    interrupted = data.load_dataset(out)  # every finished episode readable
    assert len(interrupted) == len(saved)
    # resume: the missing episodes are collected, the saved ones are not redone
    summaries = simulate("maze-hard", "explore", len(saved) + 2, seed=11, out=out, progress=False)
    assert [s.index for s in summaries] == [len(saved), len(saved) + 1]
    final = data.load_dataset(out)
    assert len(final) == len(saved) + 2 and not data.parts_dir(out).exists()
    assert not list(tmp_path.glob(".*tmp*")), "stale temporaries left visible"
    np.testing.assert_array_equal(final.episodes[0]["image"], interrupted.episodes[0]["image"])
    fresh = simulate("maze-hard", "explore", 1, seed=11, progress=False)[0]
    np.testing.assert_array_equal(final.episodes[0]["image"], fresh["image"])
