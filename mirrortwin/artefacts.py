"""The results folder of a run or a comparison: frames, summary, plots and report on disk.

Folder names carry no timestamp, so re-running a command rewrites the same folder. Files a previous
run wrote but this one doesn't (plots after ``--no-plots``) are removed first, so a folder never
mixes artefacts of two runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirrortwin import plots, report
from sim.results import RunResult

RUN_FILES: tuple[str, ...] = (
    "timeseries.csv",
    "timeseries.parquet",
    "host_util.parquet",
    "migrations.parquet",
    "instances.parquet",
    "workflows.parquet",
    "summary.json",
    "report.md",
    *plots.RUN_PLOTS.values(),
)
COMPARISON_FILES: tuple[str, ...] = ("comparison.csv", "comparison.md", "report.md", plots.COMPARISON_PLOT)


@dataclass(frozen=True)
class WrittenRun:
    """Where a run's artefacts went.

    Attributes:
        folder: The results folder.
        report: Its ``report.md``.
        plots: The plot files, keyed like :data:`mirrortwin.plots.RUN_PLOTS` (empty with no plots).
    """

    folder: Path
    report: Path
    plots: dict[str, Path] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars and arrays, paths and non-finite floats into plain JSON values.

    NaN and infinity become ``null``: they are not valid JSON and would break strict readers.
    """
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _clear(folder: Path, names: Sequence[str]) -> None:
    for name in names:
        (folder / name).unlink(missing_ok=True)


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as Parquet; column labels become strings because Parquet requires it."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    out.to_parquet(path)


def write_run(
    result: RunResult,
    folder: Path,
    *,
    with_plots: bool = True,
    description: str = "",
    overrides: Mapping[str, Any] | None = None,
) -> WrittenRun:
    """Write every artefact of ``result`` into ``folder`` (created if missing).

    Args:
        result: The run.
        folder: Target folder; files of an earlier run there are replaced.
        with_plots: Draw the PNG plots (the slowest part for large fleets).
        description: Scenario description for the report's opening.
        overrides: The ``--set`` overrides of the run, recorded in ``summary.json``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder, RUN_FILES)
    result.timeseries.to_csv(folder / "timeseries.csv", index=False)
    _parquet(result.timeseries, folder / "timeseries.parquet")
    _parquet(result.host_util, folder / "host_util.parquet")
    _parquet(result.migrations, folder / "migrations.parquet")
    _parquet(result.instances, folder / "instances.parquet")
    _parquet(result.workflows, folder / "workflows.parquet")
    summary = {
        "scenario": result.scenario,
        "policy": result.policy,
        "seed": result.seed,
        "overrides": dict(overrides or {}),
        "headline": report.headline_values(result),
        **result.summary,
    }
    (folder / "summary.json").write_text(
        json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    written = plots.write_run_plots(result, folder) if with_plots else {}
    report_path = folder / "report.md"
    report_path.write_text(report.run_report(result, written, description=description), encoding="utf-8")
    return WrittenRun(folder=folder, report=report_path, plots=written)


@dataclass(frozen=True)
class WrittenComparison:
    """Where a comparison's artefacts went.

    Attributes:
        folder: The comparison folder.
        report: Its ``report.md``.
        table_csv: Raw headline values, one row per policy.
        table_md: The same, formatted, as a Markdown table.
        plot: The bar plot, or None with ``--no-plots``.
        runs: Each policy's own run folder.
    """

    folder: Path
    report: Path
    table_csv: Path
    table_md: Path
    plot: Path | None
    runs: dict[str, WrittenRun]


def write_comparison(
    results: Sequence[RunResult],
    folder: Path,
    *,
    with_plots: bool = True,
    description: str = "",
    overrides: Mapping[str, Any] | None = None,
) -> WrittenComparison:
    """Write the side-by-side table, bar plot and report, plus one run folder per policy inside.

    Args:
        results: One run per policy, all of the same scenario and seed.
        folder: Target folder.
        with_plots: Draw the comparison bar plot and each run's plots.
        description: Scenario description for each run's report.
        overrides: The ``--set`` overrides, recorded in each run's ``summary.json``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder, COMPARISON_FILES)
    runs = {
        r.policy: write_run(r, folder / r.policy, with_plots=with_plots, description=description, overrides=overrides)
        for r in results
    }
    frame = report.comparison_frame(results)
    table_csv = folder / "comparison.csv"
    frame.to_csv(table_csv)
    table_md = folder / "comparison.md"
    table_md.write_text(report.comparison_markdown(frame) + "\n", encoding="utf-8")
    scenario, seed = results[0].scenario, results[0].seed
    plot_path: Path | None = None
    if with_plots:
        title = f"{scenario}, seed {seed}"
        plot_path = plots.save(
            plots.comparison_figure(report.comparison_plot_table(frame), title=title),
            folder / plots.COMPARISON_PLOT,
        )
    report_path = folder / "report.md"
    report_path.write_text(
        report.comparison_report(
            scenario, seed, frame, plot=plot_path, run_dirs={p: w.folder for p, w in runs.items()}
        ),
        encoding="utf-8",
    )
    return WrittenComparison(
        folder=folder, report=report_path, table_csv=table_csv, table_md=table_md, plot=plot_path, runs=runs
    )
