"""Shared fixtures: a few short maze episodes (collected once per session) and a debug-size trained run."""
from __future__ import annotations

import pytest

from hvp.data import TrajectoryDataset, save_trajectories


@pytest.fixture(scope="session")
def maze_dataset() -> TrajectoryDataset:
    from hvp.simulate import simulate

    episodes = simulate("maze-easy", "explore", 4, env_kwargs={"max_steps": 20}, progress=False)
    return TrajectoryDataset(episodes, {"env_name": "maze-easy", "env_kwargs": {}})


@pytest.fixture(scope="session")
def maze_file(maze_dataset, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "maze.hdf5"
    save_trajectories(maze_dataset.episodes, path, maze_dataset.env_args)
    return str(path)


@pytest.fixture(scope="session")
def rssm_run(maze_dataset, tmp_path_factory) -> str:
    from hvp.models.fit import fit

    out = tmp_path_factory.mktemp("runs") / "rssm"
    fit(maze_dataset, out, preset="debug", train_overrides={"steps": 10}, threads=2, progress=False)
    return str(out)
