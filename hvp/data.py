"""Trajectories on disk: robomimic-compatible HDF5, written atomically, read as windows.

Layout of a finished file::

    data                      attrs: env_args (JSON), total (frames)
    data/demo_N               attrs: num_samples, seed, success
    data/demo_N/obs/image     uint8 [T+1, h, w, 3]   (gzip)
    data/demo_N/obs/state     float32 [T+1, S]
    data/demo_N/obs/true_state float32 [T+1, X]      (evaluation only)
    data/demo_N/actions       float32 [T+1, A]       last row zero: no action after the final frame
    data/demo_N/rewards       float32 [T+1]
    data/demo_N/dones         uint8 [T+1]            1 on the final frame
    data/demo_N/goal/image    uint8 [h, w, 3]

Every episode of a run first lands in its own shard ``<path>.parts/demo_N.hdf5``,
written to a temporary name and renamed, so a process killed mid-write leaves every
earlier episode readable and no half-written file visible; `finalize` merges the shards
into ``<path>`` the same way. Readers accept a finished file, a parts folder, or both.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import h5py
import numpy as np

Episode = dict[str, Any]
FRAME_KEYS = ("image", "state", "true_state")
PART_NAME = re.compile(r"demo_(\d+)\.hdf5$")


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or not in hvp's layout."""


def parts_dir(path: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(path)}.parts")


def _atomic_h5(path: Path):
    """Open `path`'s temporary sibling for writing; the caller renames it into place when done."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    return tmp, h5py.File(tmp, "w")


def _publish(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _write_episode(group: h5py.Group, episode: Mapping[str, Any]) -> None:
    frames = len(episode["image"])
    obs = group.create_group("obs")
    # whole-episode chunks compress ~6x better than per-frame ones; episodes are always read whole
    obs.create_dataset("image", data=episode["image"], compression="gzip", compression_opts=6,
                       chunks=(min(frames, 256), *episode["image"].shape[1:]))
    for key in ("state", "true_state"):
        obs.create_dataset(key, data=np.asarray(episode[key], np.float32))
    group.create_dataset("actions", data=np.asarray(episode["action"], np.float32))
    group.create_dataset("rewards", data=np.asarray(episode.get("reward", np.zeros(frames)), np.float32))
    dones = np.zeros(frames, np.uint8)
    dones[-1] = 1
    group.create_dataset("dones", data=dones)
    group.create_group("goal").create_dataset("image", data=episode["goal_image"])
    group.attrs["num_samples"] = frames
    group.attrs["seed"] = int(episode.get("seed", -1))
    group.attrs["success"] = bool(episode.get("success", False))


def check_episode(episode: Mapping[str, Any]) -> None:
    """Raise DatasetError naming the first inconsistent field of an episode dict."""
    for key in ("image", "state", "true_state", "action", "goal_image"):
        if key not in episode:
            raise DatasetError(f"episode is missing {key!r} (has {sorted(episode)})")
    image = np.asarray(episode["image"])
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise DatasetError(f"episode['image']: expected uint8 [T+1, h, w, 3], got {image.dtype} {image.shape}")
    for key in ("state", "true_state", "action"):
        if len(episode[key]) != len(image):
            raise DatasetError(f"episode[{key!r}] has {len(episode[key])} rows, expected {len(image)} (one per frame)")


def write_part(path: str | os.PathLike, index: int, episode: Mapping[str, Any],
               env_args: Mapping[str, Any] | None = None) -> Path:
    """Write one episode as shard `index` of the dataset at `path` (atomic)."""
    check_episode(episode)
    folder = parts_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"demo_{index}.hdf5"
    tmp, handle = _atomic_h5(target)
    with handle:
        handle.attrs["env_args"] = json.dumps(dict(env_args or {}))
        _write_episode(handle.create_group(f"demo_{index}"), episode)
    _publish(tmp, target)
    return target


def part_indices(path: str | os.PathLike) -> list[int]:
    folder = parts_dir(path)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for m in (PART_NAME.match(p.name) for p in folder.iterdir()) if m)


def finished_indices(path: str | os.PathLike) -> list[int]:
    """Episode indices already saved at `path`, merged or as shards (what a resumed run skips)."""
    merged: list[int] = []
    if Path(path).is_file():
        with _open(path) as handle:
            merged = [int(name.split("_")[1]) for name in _demo_root(handle)]
    return sorted(set(merged) | set(part_indices(path)))


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete temporaries a killed writer left behind (they were never visible as episodes)."""
    for folder in (Path(path).parent, parts_dir(path)):
        if folder.is_dir():
            for stale in folder.glob(".*.hdf5.tmp-*"):
                stale.unlink(missing_ok=True)


def finalize(path: str | os.PathLike, env_args: Mapping[str, Any]) -> Path:
    """Merge the shards (and any earlier finished file) into `path`, atomically, then drop the shards."""
    path = Path(path)
    remove_stale_temporaries(path)
    tmp, out = _atomic_h5(path)
    total = 0
    with out:
        data = out.create_group("data")
        data.attrs["env_args"] = json.dumps(dict(env_args))
        for source in _sources(path):
            with _open(source) as handle:
                root = _demo_root(handle)
                for name in root:
                    if name not in data:
                        handle.copy(root[name], data, name=name)
                        total += int(root[name].attrs["num_samples"])
        data.attrs["total"] = total
    _publish(tmp, path)
    for index in part_indices(path):
        (parts_dir(path) / f"demo_{index}.hdf5").unlink()
    if parts_dir(path).is_dir() and not any(parts_dir(path).iterdir()):
        parts_dir(path).rmdir()
    return path


def save_trajectories(episodes: Iterable[Mapping[str, Any]], path: str | os.PathLike,
                      env_args: Mapping[str, Any] | None = None) -> Path:
    """Write episodes to a robomimic-compatible HDF5 file (appending after any already there)."""
    start = max(finished_indices(path), default=-1) + 1
    for offset, episode in enumerate(episodes):
        write_part(path, start + offset, episode, env_args)
    return finalize(path, env_args or {})


def _sources(path: Path) -> list[Path]:
    """The finished file (if any) then the shards, in episode order."""
    return ([path] if path.is_file() else []) + [parts_dir(path) / f"demo_{i}.hdf5" for i in part_indices(path)]


def _demo_root(handle: h5py.File) -> h5py.Group:
    """Where the demo_N groups live: `data` in a finished file, the root in a shard."""
    return handle["data"] if "data" in handle else handle


def _open(path: str | os.PathLike) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read dataset {os.fspath(path)!r}: {err}") from err


def _read_group(group: h5py.Group) -> Episode:
    try:
        return {
            "image": group["obs/image"][()],
            "state": group["obs/state"][()],
            "true_state": group["obs/true_state"][()],
            "action": group["actions"][()],
            "reward": group["rewards"][()],
            "goal_image": group["goal/image"][()],
            "success": bool(group.attrs.get("success", False)),
            "seed": int(group.attrs.get("seed", -1)),
        }
    except KeyError as err:
        raise DatasetError(f"{group.file.filename}:{group.name} is not in hvp's layout: {err}") from err


class TrajectoryDataset:
    """Episodes held in memory, sampled as fixed-length training windows."""

    def __init__(self, episodes: list[Episode], env_args: Mapping[str, Any]) -> None:
        self.episodes = episodes
        self.env_args = dict(env_args)

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def frames(self) -> int:
        return sum(len(e["image"]) for e in self.episodes)

    def sample_windows(self, rng: np.random.Generator, batch: int, length: int) -> dict[str, np.ndarray]:
        """-> {"image": uint8 [B, L, h, w, 3], "state", "true_state", "action": float32 [B, L, .]}.

        action[:, t] is executed after image[:, t]; image[:, t+1] is its result.
        """
        long_enough = [e for e in self.episodes if len(e["image"]) >= length]
        if not long_enough:
            raise DatasetError(f"no episode has {length} frames (longest: {max(len(e['image']) for e in self.episodes)})")
        picks = rng.integers(len(long_enough), size=batch)
        windows: dict[str, list[np.ndarray]] = {key: [] for key in (*FRAME_KEYS, "action")}
        for pick in picks:
            episode = long_enough[pick]
            start = int(rng.integers(len(episode["image"]) - length + 1))
            for key in windows:
                windows[key].append(episode[key][start:start + length])
        return {key: np.stack(value) for key, value in windows.items()}

    def split(self, held_out_fraction: float, seed: int = 0) -> tuple["TrajectoryDataset", "TrajectoryDataset"]:
        """Split by episode: (train, held-out), at least one episode in each."""
        if not 0 < held_out_fraction < 1 or len(self) < 2:
            raise DatasetError(f"split needs 0 < fraction < 1 and >= 2 episodes (got {held_out_fraction}, {len(self)})")
        order = np.random.default_rng(seed).permutation(len(self))
        n_held = min(max(1, round(len(self) * held_out_fraction)), len(self) - 1)
        held, train = order[:n_held], order[n_held:]
        return (TrajectoryDataset([self.episodes[i] for i in sorted(train)], self.env_args),
                TrajectoryDataset([self.episodes[i] for i in sorted(held)], self.env_args))


def load_dataset(path: str | os.PathLike) -> TrajectoryDataset:
    """Read a finished file and/or its shards (episodes of an interrupted run stay usable)."""
    path = Path(path)
    sources = _sources(path)
    if not sources:
        raise DatasetError(f"no dataset at {os.fspath(path)!r} (neither the file nor {parts_dir(path).name}/ exists)")
    episodes: dict[int, Episode] = {}
    env_args: dict[str, Any] = {}
    for source in sources:
        with _open(source) as handle:
            root = _demo_root(handle)
            env_args = env_args or json.loads(root.attrs.get("env_args", "{}"))
            for name in root:
                if not name.startswith("demo_"):
                    raise DatasetError(f"{source}: unexpected group {name!r}; expected demo_N groups")
                episodes.setdefault(int(name.split("_")[1]), _read_group(root[name]))
    if not episodes:
        raise DatasetError(f"dataset {os.fspath(path)!r} holds no episodes")
    return TrajectoryDataset([episodes[i] for i in sorted(episodes)], env_args)


def load_datasets(paths: Sequence[str | os.PathLike]) -> TrajectoryDataset:
    """Several datasets of one task as one (episodes in the order given); their tasks must agree."""
    if not paths:
        raise DatasetError("paths: expected at least one dataset, got none")
    datasets = [load_dataset(path) for path in paths]
    names = {os.fspath(path): dataset.env_args.get("env_name") for path, dataset in zip(paths, datasets)}
    if len(set(names.values())) > 1:
        raise DatasetError(f"datasets of different tasks cannot be combined: {names}")
    return TrajectoryDataset([episode for dataset in datasets for episode in dataset.episodes], datasets[0].env_args)
