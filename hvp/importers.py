"""Real-robot datasets -> hvp's HDF5 layout: LeRobotDataset v3 folders and robomimic HDF5 files.

    import_lerobot("so100_pick", "real.hdf5", image_size=(64, 64))   # pyarrow + PyAV, never the lerobot package
    import_robomimic("demo.hdf5", "real.hdf5", camera="agentview")

What is mapped, and how:

- images: one camera (``observation.images.<cam>`` / ``obs/<cam>_image``; required when there
  are several), resized to `image_size` (the world model's) with area averaging;
- ``observation.state`` / the low-dimensional ``obs`` keys (sorted, concatenated) -> ``obs/state``;
- actions, rescaled to [-1, 1] per component from bounds: the given `action_low`/`action_high`,
  else LeRobot's ``meta/stats.json`` min/max, else (robomimic, whose robosuite controllers already
  take [-1, 1]) unchanged. The bounds land in env_args so a deployment can map back;
- action row t follows frame t (both formats' convention). hvp wants the row after the final
  frame to be zero: robomimic's ``next_obs`` supplies that final frame; LeRobot has none, so its
  last action (whose result was never seen) is dropped;
- ``obs/true_state``: robomimic's simulator ``states`` when present, else NaN [T, 1];
- goal image: the episode's last frame.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from hvp import data

IMAGE_PREFIX = "observation.images."


class ImportFormatError(data.DatasetError):
    """A source dataset is not in the layout its importer reads; the message names what is missing."""


# -- shared mapping ---------------------------------------------------------------------------
def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, h, w, 3] (area averaging when shrinking: no aliasing of thin walls)."""
    from PIL import Image

    if images.shape[1:3] == tuple(size):
        return images
    height, width = size
    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.BOX if frame.shape[0] >= height
                                                              else Image.BILINEAR)) for frame in images])


def rescale_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """float [T, A] in [low, high] -> float32 [T, A] in [-1, 1] (clipped); a component with low == high maps to 0."""
    span = np.where(high > low, high - low, 1.0)
    scaled = np.where(high > low, 2.0 * (actions - low) / span - 1.0, 0.0)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def _bounds(name: str, value: Sequence[float] | None, action_dim: int) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value, np.float64).reshape(-1)
    if array.size == 1:
        array = np.full(action_dim, array[0])
    if array.size != action_dim:
        raise ValueError(f"{name}: expected 1 or {action_dim} values (the action size), got {array.size}")
    return array


def _episode(images: np.ndarray, state: np.ndarray, true_state: np.ndarray | None, actions: np.ndarray,
             success: bool, seed: int) -> data.Episode:
    """An hvp episode from T+1 frames and T actions (the zero row after the final frame is added here)."""
    frames = len(images)
    return {"image": images, "state": np.asarray(state, np.float32),
            "true_state": np.full((frames, 1), np.nan, np.float32) if true_state is None else true_state,
            "action": np.concatenate([actions, np.zeros((1, actions.shape[1]), np.float32)]),
            "reward": np.zeros(frames, np.float32), "goal_image": images[-1].copy(), "success": success, "seed": seed}


def _save(episodes: Iterator[data.Episode], out: str | os.PathLike, env_args: dict[str, Any]) -> int:
    if Path(out).exists() or data.parts_dir(out).exists():
        raise FileExistsError(f"out: {os.fspath(out)!r} already exists; choose another path or delete it")
    count = 0

    def counted() -> Iterator[data.Episode]:
        nonlocal count
        for count, episode in enumerate(episodes, 1):
            yield episode

    data.save_trajectories(counted(), out, env_args)
    if count == 0:
        raise ImportFormatError(f"source holds no episodes; nothing was written to {os.fspath(out)!r}")
    return count


def _pick_camera(cameras: list[str], camera: str | None, where: str) -> str:
    if camera is not None:
        if camera not in cameras:
            raise ImportFormatError(f"camera: {camera!r} is not among the cameras of {where}: {cameras}")
        return camera
    if len(cameras) != 1:
        raise ImportFormatError(f"camera: {where} has {'no' if not cameras else 'several'} cameras {cameras}; "
                                f"{'it cannot be imported' if not cameras else 'name one (--camera)'}")
    return cameras[0]


# -- LeRobotDataset v3 -----------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ImportFormatError(f"LeRobot dataset: missing {path}")
    return json.loads(path.read_text())


def _parquet_table(paths: list[Path], what: str, columns: Sequence[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not paths:
        raise ImportFormatError(f"LeRobot dataset: no {what} parquet files found")
    tables = []
    for path in paths:
        table = pq.read_table(path)
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ImportFormatError(f"LeRobot dataset: {what} parquet {path} lacks column(s) {missing} "
                                    f"(has {table.column_names})")
        tables.append(table.select(list(columns)))
    return pa.concat_tables(tables)


def _decode_video(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """-> (timestamps float64 [F] in seconds, frames uint8 [F, h, w, 3] resized to `size`)."""
    import av

    if not path.is_file():
        raise ImportFormatError(f"LeRobot dataset: missing video file {path}")
    times, frames = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            times.append(float(frame.pts * stream.time_base))
            frames.append(resize_images(frame.to_ndarray(format="rgb24")[None], size)[0])
    return np.array(times), np.stack(frames)


def import_lerobot(root: str | os.PathLike, out: str | os.PathLike, *, camera: str | None = None,
                   image_size: tuple[int, int] = (64, 64), action_low: Sequence[float] | None = None,
                   action_high: Sequence[float] | None = None) -> int:
    """Convert a LeRobotDataset v3 folder into an hvp dataset at `out`; -> the number of episodes."""
    root = Path(root)
    info = _read_json(root / "meta" / "info.json")
    for key in ("features", "fps", "data_path"):
        if key not in info:
            raise ImportFormatError(f"LeRobot dataset: {root / 'meta' / 'info.json'} lacks {key!r}")
    features = info["features"]
    for key in ("observation.state", "action"):
        if key not in features:
            raise ImportFormatError(f"LeRobot dataset: info.json features lack {key!r} (has {sorted(features)})")
    cameras = sorted(k[len(IMAGE_PREFIX):] for k, v in features.items()
                     if k.startswith(IMAGE_PREFIX) and v.get("dtype") == "video")
    video_key = IMAGE_PREFIX + _pick_camera(cameras, camera, f"{root} (video features)")
    if "video_path" not in info:
        raise ImportFormatError(f"LeRobot dataset: {root / 'meta' / 'info.json'} lacks 'video_path'")
    action_dim = int(features["action"]["shape"][0])
    low, high = _bounds("action_low", action_low, action_dim), _bounds("action_high", action_high, action_dim)
    if low is None or high is None:
        stats = _read_json(root / "meta" / "stats.json").get("action", {})
        if "min" not in stats or "max" not in stats:
            raise ImportFormatError(f"LeRobot dataset: {root / 'meta' / 'stats.json'} has no action min/max; "
                                    f"pass the action bounds (action_low, action_high)")
        low = np.asarray(stats["min"], np.float64) if low is None else low
        high = np.asarray(stats["max"], np.float64) if high is None else high
    prefix = f"videos/{video_key}/"
    episodes_meta = _parquet_table(sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")),
                                   "meta/episodes", ["episode_index", prefix + "chunk_index", prefix + "file_index",
                                                     prefix + "from_timestamp"]).to_pylist()
    frames = _parquet_table(sorted((root / "data").glob("chunk-*/file-*.parquet")), "data",
                            ["timestamp", "frame_index", "episode_index", "observation.state", "action"])
    columns = {name: frames.column(name).to_numpy(zero_copy_only=False)
               for name in ("timestamp", "frame_index", "episode_index")}
    state_rows, action_rows = frames.column("observation.state").to_pylist(), frames.column("action").to_pylist()
    tolerance = 0.5 / float(info["fps"])
    videos: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # decoded once: many episodes share a file

    def episodes() -> Iterator[data.Episode]:
        for meta in sorted(episodes_meta, key=lambda m: m["episode_index"]):
            index = meta["episode_index"]
            rows = np.flatnonzero(columns["episode_index"] == index)
            rows = rows[np.argsort(columns["frame_index"][rows])]
            if len(rows) < 2:
                raise ImportFormatError(f"LeRobot dataset: episode {index} has {len(rows)} frame(s) in data/; need >= 2")
            path = root / info["video_path"].format(video_key=video_key, chunk_index=meta[prefix + "chunk_index"],
                                                    file_index=meta[prefix + "file_index"])
            if path not in videos:
                videos[path] = _decode_video(path, tuple(image_size))
            times, decoded = videos[path]
            # a frame's place in a multi-episode file: the episode's start in that file + its own timestamp
            wanted = meta[prefix + "from_timestamp"] + columns["timestamp"][rows]
            nearest = np.abs(times[None, :] - wanted[:, None]).argmin(1)
            late = np.abs(times[nearest] - wanted) > tolerance
            if late.any():
                raise ImportFormatError(f"LeRobot dataset: {path} has no frame within {tolerance:.3f} s of episode "
                                        f"{index}'s timestamp {wanted[late][0]:.3f} s")
            actions = np.asarray([action_rows[r] for r in rows[:-1]], np.float64)
            yield _episode(decoded[nearest], np.asarray([state_rows[r] for r in rows]), None,
                           rescale_actions(actions, low, high), False, int(index))

    env_args = {"env_name": info.get("robot_type") or root.name, "source": "lerobot", "source_path": os.fspath(root),
                "camera": video_key, "fps": info["fps"], "action_bounds": {"low": low.tolist(), "high": high.tolist()}}
    return _save(episodes(), out, env_args)


# -- robomimic HDF5 ---------------------------------------------------------------------------
def import_robomimic(path: str | os.PathLike, out: str | os.PathLike, *, camera: str | None = None,
                     image_size: tuple[int, int] = (64, 64), action_low: Sequence[float] | None = None,
                     action_high: Sequence[float] | None = None) -> int:
    """Convert a robomimic HDF5 file (data/demo_N/obs/<camera>_image, actions) into an hvp dataset at `out`."""
    try:
        source = h5py.File(path, "r")
    except OSError as err:
        raise ImportFormatError(f"robomimic: cannot read {os.fspath(path)!r}: {err}") from err
    with source:
        if "data" not in source:
            raise ImportFormatError(f"robomimic: {os.fspath(path)!r} has no 'data' group (has {sorted(source)})")
        demos = sorted((name for name in source["data"] if name.startswith("demo_")), key=lambda n: int(n.split("_")[1]))
        if not demos:
            raise ImportFormatError(f"robomimic: {os.fspath(path)!r} has no data/demo_N groups")
        first = source["data"][demos[0]]
        for key in ("obs", "actions"):
            if key not in first:
                raise ImportFormatError(f"robomimic: data/{demos[0]} lacks {key!r} (has {sorted(first)})")
        cameras = sorted(k[:-len("_image")] for k in first["obs"] if k.endswith("_image"))
        image_key = _pick_camera(cameras, camera, f"{os.fspath(path)} (obs/<camera>_image)") + "_image"
        action_dim = first["actions"].shape[1]
        low, high = _bounds("action_low", action_low, action_dim), _bounds("action_high", action_high, action_dim)
        low = np.full(action_dim, -1.0) if low is None else low  # robosuite controllers take [-1, 1]
        high = np.full(action_dim, 1.0) if high is None else high
        source_args = json.loads(source["data"].attrs.get("env_args", "{}"))

        def episodes() -> Iterator[data.Episode]:
            for name in demos:
                demo = source["data"][name]
                if image_key not in demo["obs"] or "actions" not in demo:
                    raise ImportFormatError(f"robomimic: data/{name} lacks obs/{image_key} or actions")
                obs, next_obs = demo["obs"], demo.get("next_obs")
                low_dim = sorted(k for k in obs if not k.endswith("_image") and obs[k].ndim <= 2)
                # the final frame is the result of the last action: next_obs supplies it when present
                images, state, actions = obs[image_key][()], _low_dim(obs, low_dim), demo["actions"][()]
                true_state = demo["states"][()].astype(np.float32) if "states" in demo else None
                if next_obs is not None and image_key in next_obs:
                    images = np.concatenate([images, next_obs[image_key][-1:]])
                    state = np.concatenate([state, _low_dim(next_obs, low_dim)[-1:]])
                    if true_state is not None:  # robomimic keeps no simulator state after the last action
                        true_state = np.concatenate([true_state, np.full_like(true_state[-1:], np.nan)])
                else:
                    actions = actions[:-1]
                yield _episode(resize_images(images, tuple(image_size)), state, true_state,
                               rescale_actions(actions, low, high), bool(demo["dones"][-1]) if "dones" in demo else False,
                               int(name.split("_")[1]))

        env_args = {"env_name": source_args.get("env_name", Path(path).stem), "source": "robomimic",
                    "source_path": os.fspath(path), "source_env_args": source_args, "camera": image_key,
                    "action_bounds": {"low": low.tolist(), "high": high.tolist()}}
        return _save(episodes(), out, env_args)


def _low_dim(obs: h5py.Group, keys: list[str]) -> np.ndarray:
    """The low-dimensional observations of a demo, concatenated per frame: float32 [T, S] (S = 0 without any)."""
    frames = len(next(iter(obs.values())))
    parts = [obs[k][()].reshape(frames, -1) for k in keys]
    return np.concatenate(parts, 1).astype(np.float32) if parts else np.zeros((frames, 0), np.float32)
