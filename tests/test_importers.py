"""Importers read small LeRobotDataset v3 folders (pyarrow parquet + PyAV mp4) and robomimic files written here."""
import json
import shutil

import av
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hvp.cli import main
from hvp.data import load_dataset
from hvp.importers import ImportFormatError, import_lerobot, import_robomimic

FPS = 10
LENGTHS = (5, 4, 6)  # episodes 0 and 1 share file-000, episode 2 is alone in file-001
FILE_OF_EPISODE = (0, 0, 1)
ACTION_MIN, ACTION_MAX = np.array([-2.0, 0.0, 10.0]), np.array([2.0, 1.0, 20.0])


def frame_color(episode: int, frame: int) -> np.ndarray:
    """A flat colour per (episode, frame): survives h264 within a few levels, so alignment is checkable."""
    return np.array([30 + 25 * frame, 40 + 70 * episode, 200 - 20 * frame], np.uint8)


def episode_arrays(episode: int, length: int, size: int = 48):
    frames = np.stack([np.broadcast_to(frame_color(episode, t), (size, size, 3)) for t in range(length)])
    states = np.stack([[episode, t, 0.5 * t, -1.0] for t in range(length)]).astype(np.float32)
    actions = np.stack([ACTION_MIN + (ACTION_MAX - ACTION_MIN) * ((t + 1) / (length + 1)) * np.array([1, 0.5, 1])
                        for t in range(length)]).astype(np.float32)
    return frames, states, actions


def write_mp4(path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode())


def write_parquet(path, columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def write_lerobot(root, cameras=("front",)):
    """A LeRobotDataset v3 folder: many episodes per data/video file, frames located via meta/episodes timestamps."""
    arrays = [episode_arrays(e, n) for e, n in enumerate(LENGTHS)]
    rows, videos, meta, index = {0: [], 1: []}, {0: [], 1: []}, [], 0
    for episode, (frames, states, actions) in enumerate(arrays):
        file = FILE_OF_EPISODE[episode]
        start_s = sum(len(f) for f in videos[file]) / FPS
        videos[file].append(frames)
        entry = {"episode_index": episode, "data/chunk_index": 0, "data/file_index": file,
                 "dataset_from_index": index, "dataset_to_index": index + len(frames), "length": len(frames)}
        for camera in cameras:
            key = f"videos/observation.images.{camera}"
            entry.update({f"{key}/chunk_index": 0, f"{key}/file_index": file, f"{key}/from_timestamp": start_s,
                          f"{key}/to_timestamp": start_s + len(frames) / FPS})
        meta.append(entry)
        for t in range(len(frames)):
            rows[file].append({"timestamp": np.float32(t / FPS), "frame_index": t, "episode_index": episode,
                               "index": index, "task_index": 0, "observation.state": states[t].tolist(),
                               "action": actions[t].tolist()})
            index += 1
    for file, file_rows in rows.items():
        columns = {name: [row[name] for row in file_rows] for name in file_rows[0]}
        columns["observation.state"] = pa.array(columns["observation.state"], pa.list_(pa.float32(), 4))
        columns["action"] = pa.array(columns["action"], pa.list_(pa.float32(), 3))
        write_parquet(root / f"data/chunk-000/file-{file:03d}.parquet", columns)
        for camera in cameras:
            write_mp4(root / f"videos/observation.images.{camera}/chunk-000/file-{file:03d}.mp4",
                      np.concatenate(videos[file]))
    write_parquet(root / "meta/episodes/chunk-000/file-000.parquet", {k: [m[k] for m in meta] for k in meta[0]})
    features = {"observation.state": {"dtype": "float32", "shape": [4], "names": None},
                "action": {"dtype": "float32", "shape": [3], "names": None},
                **{f"observation.images.{c}": {"dtype": "video", "shape": [48, 48, 3], "names": ["height", "width",
                                                                                               "channels"]}
                   for c in cameras},
                **{k: {"dtype": "int64", "shape": [1], "names": None} for k in ("frame_index", "episode_index", "index",
                                                                                "task_index")},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None}}
    (root / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "robot_type": "so100", "fps": FPS, "total_episodes": len(LENGTHS),
        "total_frames": index, "chunks_size": 1000, "features": features,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"}))
    (root / "meta/stats.json").write_text(json.dumps({"action": {"min": ACTION_MIN.tolist(),
                                                                 "max": ACTION_MAX.tolist()}}))
    return arrays


def test_lerobot_round_trip_aligns_frames_states_and_rescaled_actions(tmp_path):
    arrays = write_lerobot(tmp_path / "so100")
    assert import_lerobot(tmp_path / "so100", tmp_path / "real.hdf5", image_size=(32, 32)) == 3
    dataset = load_dataset(tmp_path / "real.hdf5")
    assert dataset.env_args["source"] == "lerobot" and dataset.env_args["camera"] == "observation.images.front"
    assert dataset.env_args["action_bounds"] == {"low": ACTION_MIN.tolist(), "high": ACTION_MAX.tolist()}
    for index, (episode, (frames, states, actions)) in enumerate(zip(dataset.episodes, arrays)):
        assert episode["image"].shape == (len(frames), 32, 32, 3) and episode["seed"] == index
        for t, image in enumerate(episode["image"]):  # the frame of (episode, t), not a neighbour's
            assert np.abs(image.reshape(-1, 3).mean(0) - frame_color(index, t)).max() < 6, (index, t)
        np.testing.assert_allclose(episode["state"], states)
        expected = 2 * (actions[:-1] - ACTION_MIN) / (ACTION_MAX - ACTION_MIN) - 1
        np.testing.assert_allclose(episode["action"][:-1], expected, atol=1e-5)
        assert not episode["action"][-1].any() and np.isnan(episode["true_state"]).all()
        np.testing.assert_array_equal(episode["goal_image"], episode["image"][-1])


def test_lerobot_given_bounds_override_stats(tmp_path):
    arrays = write_lerobot(tmp_path / "so100")
    import_lerobot(tmp_path / "so100", tmp_path / "real.hdf5", action_low=[-4.0], action_high=[4.0])
    first = load_dataset(tmp_path / "real.hdf5").episodes[0]
    np.testing.assert_allclose(first["action"][:-1], np.clip(arrays[0][2][:-1] / 4.0, -1, 1), atol=1e-5)
    with pytest.raises(ValueError, match="action_low: expected 1 or 3"):
        import_lerobot(tmp_path / "so100", tmp_path / "other.hdf5", action_low=[0, 0], action_high=[1, 1])


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "meta/info.json").unlink(), "missing .*meta/info.json"),
    (lambda root: (root / "videos/observation.images.front/chunk-000/file-001.mp4").unlink(),
     "missing video file .*file-001.mp4"),
    (lambda root: write_parquet(root / "data/chunk-000/file-001.parquet", {"timestamp": [0.0], "frame_index": [0],
                                                                           "episode_index": [2]}),
     r"data parquet .*file-001.parquet lacks column\(s\) \['observation.state', 'action'\]"),
    (lambda root: shutil.rmtree(root / "meta/episodes"), "no meta/episodes parquet files"),
    (lambda root: (root / "meta/stats.json").unlink(), "missing .*stats.json"),
])
def test_lerobot_malformed_folders_name_what_is_missing(tmp_path, damage, message):
    write_lerobot(tmp_path / "so100")
    damage(tmp_path / "so100")
    with pytest.raises(ImportFormatError, match=message):
        import_lerobot(tmp_path / "so100", tmp_path / "real.hdf5")


def test_lerobot_with_two_cameras_needs_one_named(tmp_path):
    write_lerobot(tmp_path / "so100", cameras=("front", "wrist"))
    with pytest.raises(ImportFormatError, match=r"several cameras \['front', 'wrist'\]"):
        import_lerobot(tmp_path / "so100", tmp_path / "real.hdf5")
    assert import_lerobot(tmp_path / "so100", tmp_path / "real.hdf5", camera="wrist") == 3


def write_robomimic(path, demos=(6, 4)):
    """As robosuite + robomimic write it: data/demo_N/{obs, next_obs, actions, states, rewards, dones}."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        data = handle.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}})
        for index, length in enumerate(demos):
            demo = data.create_group(f"demo_{index}")
            demo.attrs["num_samples"] = length
            images = rng.integers(0, 256, (length + 1, 84, 84, 3), dtype=np.uint8)
            eef, cube = rng.normal(size=(length + 1, 3)), rng.normal(size=(length + 1, 10))
            for group, rows in (("obs", slice(0, length)), ("next_obs", slice(1, length + 1))):
                demo.create_dataset(f"{group}/agentview_image", data=images[rows])
                demo.create_dataset(f"{group}/robot0_eef_pos", data=eef[rows])
                demo.create_dataset(f"{group}/object", data=cube[rows])
            demo.create_dataset("actions", data=rng.uniform(-1, 1, (length, 7)))
            demo.create_dataset("states", data=rng.normal(size=(length, 32)))
            demo.create_dataset("rewards", data=np.r_[np.zeros(length - 1), 1.0])
            demo.create_dataset("dones", data=np.r_[np.zeros(length - 1), index == 0].astype(np.int64))
        handle.create_group("mask").create_dataset("train", data=np.array([b"demo_0", b"demo_1"]))


def test_robomimic_round_trip_adds_the_final_frame_from_next_obs(tmp_path):
    write_robomimic(tmp_path / "lift.hdf5")
    assert import_robomimic(tmp_path / "lift.hdf5", tmp_path / "real.hdf5", image_size=(64, 64)) == 2
    dataset = load_dataset(tmp_path / "real.hdf5")
    assert dataset.env_args["source_env_args"]["env_name"] == "Lift" and dataset.env_args["camera"] == "agentview_image"
    with h5py.File(tmp_path / "lift.hdf5") as source:
        for index, episode in enumerate(dataset.episodes):
            demo = source[f"data/demo_{index}"]
            length = demo.attrs["num_samples"]
            assert episode["image"].shape == (length + 1, 64, 64, 3) and episode["success"] == (index == 0)
            np.testing.assert_allclose(episode["action"][:-1], demo["actions"][()], atol=1e-6)
            assert not episode["action"][-1].any()
            state = np.concatenate([demo["obs/object"][()], demo["obs/robot0_eef_pos"][()]], 1)  # sorted key order
            np.testing.assert_allclose(episode["state"][:-1], state, atol=1e-6)
            np.testing.assert_allclose(episode["state"][-1], np.r_[demo["next_obs/object"][-1],
                                                                    demo["next_obs/robot0_eef_pos"][-1]], atol=1e-6)
            np.testing.assert_allclose(episode["true_state"][:-1], demo["states"][()], atol=1e-6)
            assert np.isnan(episode["true_state"][-1]).all()
            # resized from 84 to 64 by area averaging: the mean colour is kept
            last = demo["next_obs/agentview_image"][-1].reshape(-1, 3).mean(0)
            assert np.abs(episode["image"][-1].reshape(-1, 3).mean(0) - last).max() < 2


def test_robomimic_errors_and_cli(tmp_path):
    (tmp_path / "empty.hdf5").touch()
    with h5py.File(tmp_path / "empty.hdf5", "w") as handle:
        handle.create_group("mask")
    with pytest.raises(ImportFormatError, match="has no 'data' group"):
        import_robomimic(tmp_path / "empty.hdf5", tmp_path / "out.hdf5")
    write_robomimic(tmp_path / "lift.hdf5")
    with pytest.raises(ImportFormatError, match="camera: 'eye_in_hand' is not among .*\\['agentview'\\]"):
        import_robomimic(tmp_path / "lift.hdf5", tmp_path / "out.hdf5", camera="eye_in_hand")
    assert main(["import-data", "robomimic", str(tmp_path / "lift.hdf5"), "--out", str(tmp_path / "out.hdf5"),
                 "--image-size", "32", "32"]) == 0
    assert load_dataset(tmp_path / "out.hdf5").episodes[0]["image"].shape[1:] == (32, 32, 3)
    with pytest.raises(SystemExit, match="already exists"):
        main(["import-data", "robomimic", str(tmp_path / "lift.hdf5"), "--out", str(tmp_path / "out.hdf5")])
