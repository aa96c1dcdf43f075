"""Each script in examples/ runs end to end at --debug size as a user would run it: a fresh process, exit 0."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playground_fixtures import debug_run, maze_episodes  # noqa: F401 (fixtures)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str) -> str:
    env = {**os.environ, "MUJOCO_GL": "egl"}  # what the hvp CLI sets; an example is a plain script
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "--debug", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name", ["custom_world_model.py", "custom_scene.py", "custom_optimizer.py"])
def test_examples_stay_short(name):
    assert len((EXAMPLES / name).read_text().splitlines()) <= 100


@pytest.mark.slow  # a fresh interpreter, collection and training: ~10 s each on 2 free cores
def test_custom_world_model_trains_registers_and_plans():
    out = run_example("custom_world_model.py")
    loss = float(re.search(r"trained 30 steps, final loss ([\d.]+)", out).group(1))
    assert 0 < loss < 1
    assert re.search(r"tiny-mlp \+ CEM on maze-easy: success [01]/1, act\(\) [\d.]+ ms median", out)


@pytest.mark.slow  # a fresh interpreter, collection and training: ~10 s each on 2 free cores
def test_custom_scene_collects_trains_and_plans(tmp_path):
    from hvp.data import load_dataset

    out = run_example("custom_scene.py", "--out", str(tmp_path))
    dataset = load_dataset(tmp_path / "data.hdf5")
    assert len(dataset) == 3 and dataset.episodes[0]["image"].shape[1:] == (64, 64, 3)
    assert (tmp_path / "model" / "model.safetensors").is_file()
    results = re.findall(r"seed (\d): success (True|False), (\d+) steps, final fingertip distance ([\d.]+)", out)
    assert [seed for seed, *_ in results] == ["0", "1", "2"]
    assert all(success == "True" or steps == "12" for _, success, steps, _ in results)


@pytest.mark.slow  # a fresh interpreter, collection and training: ~10 s each on 2 free cores
def test_custom_optimizer_plans_beside_cem(debug_run):
    out = run_example("custom_optimizer.py", "--model", debug_run)
    planners = re.findall(r"^(hill-climb|cem): success [01]/1, act\(\) [\d.]+ ms median$", out, re.M)
    assert planners == ["hill-climb", "cem"]
