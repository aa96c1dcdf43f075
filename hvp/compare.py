"""Compare on equal footing: a grid of {models} x {planners} x {tasks} x {flat, hierarchical} from one YAML file.

    models:   {maze-easy: runs/maze-easy}      # name -> run directory or a name in hvp.extension.MODELS
    planners: [cem, icem, mppi]                 # names in hvp.planners.OPTIMIZERS
    tasks:    [maze-easy]                       # names in hvp.sim.ENVS
    held_out: {maze-easy: runs/data/maze-easy-heldout.hdf5}   # per task: open-loop prediction error data
    episodes: 5

Every finished cell is appended to OUT/results.csv at once, so a rerun skips it; each
model's open-loop prediction error per task (hvp.models.evaluate on the held-out data)
lands in OUT/prediction.csv the same way. From both come results.md and two plots:
success vs prediction error across models, success vs planning time per planner.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from hvp.compare_report import write_report
from hvp.config import Config, ConfigError, require

MODES = ("flat", "hierarchical")
COSTS = ("latent", "temporal", "pixel")
SUBGOAL_SOURCES = ("generated", "graph", "auto")
CELL_KEY = ("model", "planner", "task", "mode", "cost", "preset", "episodes", "seed")
RESULT_FIELDS = (*CELL_KEY, "status", "reason", "successes", "success_rate", "ci_low", "ci_high",
                 "steps_to_success_median", "step_ms_median", "step_ms_p95", "seconds")
PREDICTION_KEY = ("model", "task", "context", "horizon", "windows")
PREDICTION_FIELDS = (*PREDICTION_KEY, "psnr_mean_db", "psnr_last_db", "position_error_last_px")


@dataclasses.dataclass(frozen=True)
class Grid(Config):
    models: dict = dataclasses.field(default_factory=dict)  # name -> run directory or hvp.extension.MODELS name
    planners: tuple = ("cem",)  # optimizer names (hvp.planners.OPTIMIZERS)
    tasks: tuple = ("maze-easy",)  # env names (hvp.sim.ENVS)
    modes: tuple = MODES  # flat latent MPC and/or the hierarchical controller
    held_out: dict = dataclasses.field(default_factory=dict)  # task -> held-out HDF5 for prediction error
    cost: str = "latent"  # planning cost; "temporal" uses RUN/distance of each model
    subgoals: str = "generated"  # hierarchical cells: generated (RUN/subgoals), graph (RUN/graph_nodes) or auto
    preset: str = "cpu"  # optimizer and MPC sizes (debug, cpu, gpu)
    episodes: int = 5  # evaluation episodes per cell, seeds seed .. seed + episodes - 1
    seed: int = 0
    max_steps: int = 0  # episode step limit; 0 = the task's own
    threads: int = 1  # torch CPU threads of each model
    context: int = 5  # prediction error: frames observed before the open-loop rollout
    horizon: int = 10  # prediction error: frames predicted open loop
    windows: int = 32  # prediction error: held-out windows scored

    def validate(self) -> None:
        require(isinstance(self.models, dict) and len(self.models) > 0,
                "models: expected a mapping name -> run directory with at least one entry (got {!r})", self.models)
        for field in ("planners", "tasks", "modes"):
            require(len(getattr(self, field)) > 0, "{}: expected at least one entry", field)
        unknown = sorted(set(self.modes) - set(MODES))
        require(not unknown, "modes: expected entries from {}, got {}", MODES, unknown)
        require(self.cost in COSTS, "cost: expected one of {}, got {!r}", COSTS, self.cost)
        require(self.subgoals in SUBGOAL_SOURCES, "subgoals: expected one of {}, got {!r}", SUBGOAL_SOURCES,
                self.subgoals)
        require(self.episodes >= 1, "episodes: expected >= 1 (got {})", self.episodes)
        require(self.max_steps >= 0 and self.threads >= 1, "max_steps >= 0 and threads >= 1 expected (got {}, {})",
                self.max_steps, self.threads)
        missing = sorted(set(self.held_out) - set(self.tasks))
        require(not missing, "held_out: tasks {} are not in tasks {}", missing, list(self.tasks))


def load_grid(path: str | os.PathLike) -> Grid:
    """Read a grid YAML file; errors name the file and the field."""
    try:
        values = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"grid: cannot read {os.fspath(path)!r}: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"grid: {os.fspath(path)!r} must hold a YAML mapping (models, planners, tasks, ...)")
    return Grid.from_dict(values)


# -- resumable CSV logs -----------------------------------------------------------------------------
def read_rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != fields:
            raise ValueError(f"{path}: columns {reader.fieldnames} differ from {list(fields)}; move it away or "
                             "choose another --out")
        return list(reader)


def append_row(path: Path, fields: tuple[str, ...], row: dict[str, Any]) -> None:
    """Append one row (header first on a new file) and flush it to disk: a killed run keeps every finished cell."""
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        if new:
            writer.writeheader()
        writer.writerow({field: row.get(field, "") for field in fields})
        handle.flush()
        os.fsync(handle.fileno())


def key_of(row: dict[str, Any], key: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(row[name]) for name in key)


# -- the grid -------------------------------------------------------------------------------------------
def cells(grid: Grid) -> Iterator[dict[str, Any]]:
    """Every cell's key fields, model-major so each model is loaded once."""
    for model in grid.models:
        for task in grid.tasks:
            for planner in grid.planners:
                for mode in grid.modes:
                    yield {"model": model, "planner": planner, "task": task, "mode": mode, "cost": grid.cost,
                           "preset": grid.preset, "episodes": grid.episodes, "seed": grid.seed}


def _distance_dir(grid: Grid, model: str) -> Path | None:
    if grid.cost != "temporal":
        return None
    folder = Path(str(grid.models[model])) / "distance"
    if not folder.is_dir():
        raise ConfigError(f"models: {model!r} has no {folder} for cost 'temporal'; run hvp train-distance or use "
                          "cost: latent")
    return folder


def run_cell(grid: Grid, cell: dict[str, Any], runtime: Any, env: Any) -> dict[str, Any]:
    """Evaluate one cell -> its result row; a hierarchical cell that cannot be built is a 'skipped' row with the reason."""
    from hvp.agent import evaluate
    from hvp.playground import hierarchical_controller, mpc_controller

    started = time.perf_counter()
    distance_dir = _distance_dir(grid, cell["model"])
    if cell["mode"] == "flat":
        controller = mpc_controller(runtime, cell["planner"], grid.cost, preset=grid.preset, seed=grid.seed,
                                    distance_dir=distance_dir)
    else:
        try:
            controller = hierarchical_controller(str(grid.models[cell["model"]]), cell["planner"], grid.cost,
                                                 subgoals=grid.subgoals, preset=grid.preset, seed=grid.seed,
                                                 distance_dir=distance_dir, threads=grid.threads)
        except (NotImplementedError, FileNotFoundError) as err:  # not built yet, or this run lacks a subgoal model
            return {**cell, "status": "skipped", "reason": str(err)}
    summary = evaluate(env, controller, grid.episodes, grid.seed, progress=False)
    low, high = summary["success_ci95"]
    return {**cell, "status": "done", "successes": summary["successes"], "success_rate": summary["success_rate"],
            "ci_low": low, "ci_high": high, "steps_to_success_median": summary["steps_to_success_median"],
            "step_ms_median": summary["step_ms_median"], "step_ms_p95": summary["step_ms_p95"],
            "seconds": time.perf_counter() - started}


def prediction_error(grid: Grid, model: str, task: str, runtime: Any) -> dict[str, Any]:
    """Open-loop prediction error of `runtime` on the task's held-out data (hvp.models.evaluate)."""
    from hvp.data import load_dataset
    from hvp.models.evaluate import evaluate as evaluate_model

    summary, _ = evaluate_model(runtime, load_dataset(grid.held_out[task]), context=grid.context,
                                horizon=grid.horizon, windows=grid.windows, seed=grid.seed)
    scores = summary["methods"]["rssm"]  # models.evaluate files the runtime's predictions under "rssm"
    position = scores.get("position_error_px")
    return {"model": model, "task": task, "context": grid.context, "horizon": grid.horizon, "windows": grid.windows,
            "psnr_mean_db": float(np.mean(scores["psnr"])), "psnr_last_db": scores["psnr"][-1],
            "position_error_last_px": "" if position is None else position[-1]}


def run_grid(grid: Grid, out: str | os.PathLike, progress: bool = True) -> list[dict[str, str]]:
    """Run every cell not yet in OUT/results.csv, then write results.md and the plots; -> this grid's rows."""
    from tqdm.auto import tqdm

    from hvp.playground import load_model
    from hvp.sim import make

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path, prediction_path = out / "results.csv", out / "prediction.csv"
    # skipped cells are tried again: the hierarchical controller may exist by the next run
    done = {key_of(row, CELL_KEY) for row in read_rows(results_path, RESULT_FIELDS) if row["status"] == "done"}
    predicted = {key_of(row, PREDICTION_KEY) for row in read_rows(prediction_path, PREDICTION_FIELDS)}
    todo = [cell for cell in cells(grid) if key_of(cell, CELL_KEY) not in done]
    bar = tqdm(total=len(todo), desc="compare", unit="cell", disable=not progress)
    for model in grid.models:
        model_cells = [cell for cell in todo if cell["model"] == model]
        pending_tasks = [task for task in grid.held_out
                         if key_of({"model": model, "task": task, "context": grid.context, "horizon": grid.horizon,
                                    "windows": grid.windows}, PREDICTION_KEY) not in predicted]
        if not model_cells and not pending_tasks:
            continue
        source = str(grid.models[model])
        # threads reach hvp's own RSSM runs; a registered user model sets up its own compute
        runtime = load_model(source, threads=grid.threads) if Path(source).is_dir() else load_model(source)
        for task in pending_tasks:
            append_row(prediction_path, PREDICTION_FIELDS, prediction_error(grid, model, task, runtime))
        for task in grid.tasks:
            task_cells = [cell for cell in model_cells if cell["task"] == task]
            if not task_cells:
                continue
            env = make(task, **({"max_steps": grid.max_steps} if grid.max_steps else {}))
            try:
                for cell in task_cells:
                    bar.set_postfix_str(f"{model}/{cell['planner']}/{task}/{cell['mode']}")
                    append_row(results_path, RESULT_FIELDS, run_cell(grid, cell, runtime, env))
                    bar.update()
            finally:
                env.close()
    bar.close()
    wanted = {key_of(cell, CELL_KEY) for cell in cells(grid)}
    latest = {key_of(row, CELL_KEY): row for row in read_rows(results_path, RESULT_FIELDS)}  # last row per cell wins
    rows = [row for key, row in latest.items() if key in wanted]
    settings = (str(grid.context), str(grid.horizon), str(grid.windows))
    errors = {(row["model"], row["task"]): row for row in read_rows(prediction_path, PREDICTION_FIELDS)
              if key_of(row, PREDICTION_KEY)[2:] == settings}
    write_report(out, rows, errors)
    return rows
