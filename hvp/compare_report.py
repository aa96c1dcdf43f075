"""The report of `hvp compare`: a Markdown results table and two plots, from the rows of its CSV logs.

- results.md: one line per cell (success with its 95% Wilson interval, act() time,
  the model's open-loop prediction error on the task's held-out data), skipped cells
  with their reason;
- success_vs_prediction_error.png: one point per flat (model, planner, task) cell, x =
  the model's prediction error: does predicting better make a better agent?
- success_vs_plan_time.png: one series per planner, x = median act() time per control step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

Row = Mapping[str, str]


def _number(text: str) -> float | None:
    return float(text) if text not in ("", "None") else None


def _error_axis(errors: Mapping[tuple[str, str], Row]) -> tuple[str, str]:
    """The tracked object's position error when every task has one (the seed's measure), else PSNR."""
    if errors and all(row["position_error_last_px"] for row in errors.values()):
        return "position_error_last_px", "open-loop object position error at the last predicted step (px)"
    return "psnr_mean_db", "open-loop PSNR over the predicted steps (dB, higher is better)"


def markdown_table(rows: Sequence[Row], errors: Mapping[tuple[str, str], Row]) -> str:
    lines = ["| model | planner | task | mode | success | 95% CI | act() ms median | prediction PSNR dB | "
             "position error px |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        error = errors.get((row["model"], row["task"]), {})
        psnr = _number(error.get("psnr_mean_db", ""))
        position = _number(error.get("position_error_last_px", ""))
        prediction = (f"{psnr:.1f}" if psnr is not None else "—", f"{position:.1f}" if position is not None else "—")
        cell = f"| {row['model']} | {row['planner']} | {row['task']} | {row['mode']} | "
        if row["status"] == "skipped":
            lines.append(cell + f"skipped: {row['reason']} | | | {prediction[0]} | {prediction[1]} |")
            continue
        lines.append(cell + f"{row['successes']}/{row['episodes']} | {float(row['ci_low']):.0%}–"
                     f"{float(row['ci_high']):.0%} | {float(row['step_ms_median']):.0f} | "
                     f"{prediction[0]} | {prediction[1]} |")
    return "\n".join(lines) + "\n"


def write_report(out: str | Path, rows: Sequence[Row], errors: Mapping[tuple[str, str], Row]) -> None:
    """results.md, success_vs_prediction_error.png and success_vs_plan_time.png in `out`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out = Path(out)
    (out / "results.md").write_text(markdown_table(rows, errors))
    done = [row for row in rows if row["status"] == "done"]
    # success vs prediction error: flat cells only, so the controller is the same and the model varies
    error_key, error_label = _error_axis(errors)
    figure, axis = plt.subplots(figsize=(5.5, 4))
    planners = sorted({row["planner"] for row in done})
    for index, planner in enumerate(planners):
        points = [(_number(errors[(row["model"], row["task"])][error_key]), float(row["success_rate"]), row["model"])
                  for row in done if row["planner"] == planner and row["mode"] == "flat"
                  and (row["model"], row["task"]) in errors]
        if points:  # shrinking markers, so planners with equal results stay visible on top of each other
            axis.scatter([p[0] for p in points], [p[1] for p in points], label=planner, marker="os^Dv"[index % 5],
                         s=150 / (1 + index), alpha=0.8)
            for x, y, model in points:
                axis.annotate(model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.set(xlabel=error_label, ylabel="success rate", ylim=(-0.05, 1.05), title="success vs prediction error")
    axis.legend(title="planner")
    figure.tight_layout()
    figure.savefig(out / "success_vs_prediction_error.png", dpi=100)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for planner in sorted({row["planner"] for row in done}):
        mine = [row for row in done if row["planner"] == planner]
        axis.scatter([float(row["step_ms_median"]) for row in mine], [float(row["success_rate"]) for row in mine],
                     label=planner)
    axis.set(xlabel="act() time per control step, median (ms)", ylabel="success rate", ylim=(-0.05, 1.05),
             title="success vs planning time")
    axis.legend(title="planner")
    figure.tight_layout()
    figure.savefig(out / "success_vs_plan_time.png", dpi=100)
    plt.close(figure)
