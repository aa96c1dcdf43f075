"""Fixtures shared by the playground and compare tests: a debug RSSM run and held-out data on maze-easy."""
from __future__ import annotations

import pytest

from hvp.data import TrajectoryDataset, save_trajectories


@pytest.fixture(scope="session")
def maze_episodes() -> list:
    from hvp.simulate import simulate

    return simulate("maze-easy", "explore", 5, env_kwargs={"max_steps": 16}, progress=False)


@pytest.fixture(scope="session")
def debug_run(maze_episodes, tmp_path_factory) -> str:
    """A debug-size RSSM trained for a few steps: real weights, not a good model."""
    from hvp.models.fit import fit

    out = tmp_path_factory.mktemp("runs") / "maze-debug"
    fit(TrajectoryDataset(maze_episodes[:3], {"env_name": "maze-easy"}), out, preset="debug",
        train_overrides={"steps": 3}, threads=1, progress=False)
    return str(out)


@pytest.fixture(scope="session")
def held_out_file(maze_episodes, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "held_out.hdf5"
    save_trajectories(maze_episodes[3:], path, {"env_name": "maze-easy", "env_kwargs": {}})
    return str(path)
