"""hvp compare end to end on a tiny grid (debug RSSM, 1 episode per cell), resume, and grid validation."""
from __future__ import annotations

import csv
import re

import pytest
import yaml
from playground_fixtures import debug_run, held_out_file, maze_episodes  # noqa: F401 (fixtures)

from hvp.compare import RESULT_FIELDS, load_grid
from hvp.config import ConfigError


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def grid_file(tmp_path, debug_run, held_out_file):
    grid = {"models": {"debug": debug_run}, "planners": ["cem", "mppi"], "tasks": ["maze-easy"],
            "modes": ["flat", "hierarchical"], "held_out": {"maze-easy": held_out_file}, "preset": "debug",
            "episodes": 1, "max_steps": 3, "context": 2, "horizon": 3, "windows": 2}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_grid_runs_reports_and_resumes(grid_file, tmp_path, capsys):
    from hvp.cli import main

    out = tmp_path / "out"
    assert main(["compare", str(grid_file), "--out", str(out), "--no-progress"]) == 0
    rows = _rows(out / "results.csv")
    assert [(r["planner"], r["mode"]) for r in rows] == [("cem", "flat"), ("cem", "hierarchical"),
                                                          ("mppi", "flat"), ("mppi", "hierarchical")]
    flat = [r for r in rows if r["mode"] == "flat"]
    assert all(r["status"] == "done" and r["episodes"] == "1" and float(r["step_ms_median"]) > 0 for r in flat)
    # the debug run has no subgoal model (and maybe no hierarchy yet): skipped, with a reason that says why
    hierarchical = [r for r in rows if r["mode"] == "hierarchical"]
    assert all(r["status"] == "skipped" and ("hvp/hierarchy.py" in r["reason"] or "hvp train-" in r["reason"])
               for r in hierarchical)
    prediction = _rows(out / "prediction.csv")
    assert len(prediction) == 1 and float(prediction[0]["psnr_mean_db"]) > 0
    table = (out / "results.md").read_text()
    assert table.count("\n") == 2 + 4 and re.search(r"\| debug \| mppi \| maze-easy \| flat \| [01]/1 \|", table)
    assert (out / "success_vs_prediction_error.png").stat().st_size > 0
    assert (out / "success_vs_plan_time.png").stat().st_size > 0
    assert "4 cells (2 skipped)" in capsys.readouterr().out

    # a killed run: the last flat cell never reached the CSV; the rerun runs it alone
    kept = [r for r in rows if not (r["planner"] == "mppi" and r["mode"] == "flat")]
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, RESULT_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
    assert main(["compare", str(grid_file), "--out", str(out), "--no-progress"]) == 0
    again = _rows(out / "results.csv")
    done = [r for r in again if r["status"] == "done"]
    assert [(r["planner"], r["seconds"]) for r in done[:1]] == [("cem", flat[0]["seconds"])]  # not rerun
    assert [r["planner"] for r in done] == ["cem", "mppi"]  # each finished cell once
    assert len(_rows(out / "prediction.csv")) == 1  # prediction error not recomputed


def test_grid_errors_name_the_field(tmp_path, debug_run):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"models": {"debug": debug_run}, "modes": ["flat", "tree"]}))
    with pytest.raises(ConfigError, match=r"modes: expected entries from \('flat', 'hierarchical'\), got \['tree'\]"):
        load_grid(path)
    path.write_text(yaml.safe_dump({"models": {"debug": debug_run}, "held_out": {"push": "x.hdf5"}}))
    with pytest.raises(ConfigError, match=r"held_out: tasks \['push'\] are not in tasks"):
        load_grid(path)
    path.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        load_grid(path)
