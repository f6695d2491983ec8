"""Report, plot and results-folder writers on real runs of the ``smoke`` scenario."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from pandas.testing import assert_frame_equal

from mirrortwin import artefacts, plots, report
from mirrortwin.config import Settings
from mirrortwin.wiring import run_named
from sim.results import RunResult

pytestmark = pytest.mark.traces


def _settings(traces_root: Path, tmp: Path) -> Settings:
    return Settings(
        traces_dir=traces_root, cache_dir=tmp / "cache", trace_mirror_url=None, results_dir=tmp / "results", ci=False
    )


@pytest.fixture(scope="module")
def runs(traces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    settings = _settings(traces_root, tmp_path_factory.mktemp("smoke"))
    return {name: run_named("smoke", policy=name, overrides={}, settings=settings) for name in ("null", "threshold")}


def _strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise AssertionError(f"{path.name} holds {constant}, which is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_write_run_writes_every_file(runs: dict[str, RunResult], tmp_path: Path) -> None:
    result = runs["threshold"]
    written = artefacts.write_run(result, tmp_path / "run", overrides={"seed": 0})
    assert sorted(p.name for p in written.folder.iterdir()) == sorted(artefacts.RUN_FILES)
    assert set(written.plots) == set(plots.RUN_PLOTS)
    assert_frame_equal(pd.read_parquet(written.folder / "timeseries.parquet"), result.timeseries)
    assert_frame_equal(pd.read_parquet(written.folder / "instances.parquet"), result.instances)
    host_util = pd.read_parquet(written.folder / "host_util.parquet")
    assert host_util.shape == result.host_util.shape
    assert list(host_util.columns) == [str(c) for c in result.host_util.columns]


def test_summary_json_is_strict_and_complete(runs: dict[str, RunResult], tmp_path: Path) -> None:
    result = runs["threshold"]
    written = artefacts.write_run(result, tmp_path / "run", with_plots=False, overrides={"duration_s": 21600.0})
    summary = _strict_json(written.folder / "summary.json")
    assert (summary["scenario"], summary["policy"], summary["seed"]) == ("smoke", "threshold", 0)
    assert summary["overrides"] == {"duration_s": 21600.0}
    for key, value in report.headline_values(result).items():
        assert math.isclose(summary["headline"][key], value), key
    assert summary["energy_kwh"] == pytest.approx(result.summary["energy_kwh"])


def test_report_links_exactly_the_plots_written(runs: dict[str, RunResult], tmp_path: Path) -> None:
    result = runs["threshold"]
    folder = tmp_path / "run"
    text = artefacts.write_run(result, folder).report.read_text(encoding="utf-8")
    for name in plots.RUN_PLOTS.values():
        assert f"]({name})" in text and (folder / name).is_file()
    assert report.reading(result) in text
    for metric in report.HEADLINE:  # the optional metrics exist only with failures / requests enabled
        assert (f"| {metric.label} |" in text) == (metric.key not in report.OPTIONAL)
    # Re-writing without plots removes the old PNGs, so the folder never mixes two runs.
    text = artefacts.write_run(result, folder, with_plots=False).report.read_text(encoding="utf-8")
    assert not list(folder.glob("*.png"))
    assert ".png" not in text


def test_headline_table_names_every_metric(runs: dict[str, RunResult]) -> None:
    table = report.headline_table(runs["threshold"])
    assert table.splitlines()[0] == "smoke / threshold / seed 0"
    for metric in report.HEADLINE:
        assert (metric.label in table) == (metric.key not in report.OPTIONAL)
    assert "n/a" not in table


def test_null_policy_reads_as_no_migrations(runs: dict[str, RunResult]) -> None:
    values = report.headline_values(runs["null"])
    assert values["migrations"] == 0
    assert values["bytes_moved"] == 0
    assert "made no migrations" in report.reading(runs["null"])


def test_figures_have_titles_naming_the_run(runs: dict[str, RunResult]) -> None:
    for draw in (plots.host_utilisation_figure, plots.sla_energy_figure, plots.migrations_figure):
        fig = draw(runs["threshold"])
        assert isinstance(fig, Figure)
        titles = [ax.get_title() for ax in fig.axes]
        assert any("smoke" in t and "threshold" in t for t in titles), titles


def test_write_comparison(runs: dict[str, RunResult], tmp_path: Path) -> None:
    ordered = [runs["null"], runs["threshold"]]
    written = artefacts.write_comparison(ordered, tmp_path / "cmp")
    table = pd.read_csv(written.table_csv, index_col="policy", keep_default_na=False)  # a policy is named "null"
    assert list(table.index) == ["null", "threshold"]
    assert list(table.columns) == [m.key for m in report.HEADLINE if m.key not in report.OPTIONAL]
    assert table.at["null", "migrations"] == 0
    assert written.plot is not None and written.plot.is_file()
    assert set(written.runs) == {"null", "threshold"}
    md = written.table_md.read_text(encoding="utf-8").splitlines()
    assert md[0].startswith("| policy | energy |") and len(md) == 4
    text = written.report.read_text(encoding="utf-8")
    assert "](comparison.png)" in text
    assert "(null/report.md)" in text and (written.folder / "null" / "report.md").is_file()
    assert report.comparison_reading(report.comparison_frame(ordered)) in text
