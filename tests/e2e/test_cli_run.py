"""``mirrortwin run`` and ``mirrortwin compare`` end to end: real traces, real twin, every artefact."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from tests.e2e.conftest import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.traces]

RUN_ARTEFACTS = (
    "timeseries.csv",
    "timeseries.parquet",
    "host_util.parquet",
    "migrations.parquet",
    "instances.parquet",
    "summary.json",
    "host_utilisation.png",
    "sla_energy.png",
    "migrations.png",
    "report.md",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def smoke_run(mirrortwin: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("run") / "smoke"
    proc = mirrortwin("run", "smoke", "--out", str(out))
    _ok(proc)
    return out, proc.stdout


def test_run_writes_every_artefact(smoke_run: tuple[Path, str]) -> None:
    out, _ = smoke_run
    for name in RUN_ARTEFACTS:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_run_frames_agree_across_formats(smoke_run: tuple[Path, str]) -> None:
    out, _ = smoke_run
    from_parquet = pd.read_parquet(out / "timeseries.parquet")
    from_csv = pd.read_csv(out / "timeseries.csv")
    assert len(from_parquet) == 72  # 6 h at 300 s
    assert list(from_csv.columns) == list(from_parquet.columns)
    assert_frame_equal(from_csv, from_parquet, check_dtype=False)


def test_summary_and_report_agree(smoke_run: tuple[Path, str]) -> None:
    out, stdout = smoke_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "smoke"
    assert summary["seed"] == 0
    for key in ("energy_kwh", "slatah", "pdm", "slav", "esv", "migrations", "bytes_moved", "downtime_s"):
        assert summary["headline"][key] is not None, key
    assert summary["energy_kwh"] > 0
    report = (out / "report.md").read_text()
    for png in ("host_utilisation.png", "sla_energy.png", "migrations.png"):
        assert f"]({png})" in report
    assert f"{summary['energy_kwh']:,.2f} kWh" in report
    assert f"{summary['energy_kwh']:,.2f} kWh" in stdout
    assert "SLATAH" in stdout and "report:" in stdout


def test_default_folder_is_deterministic(mirrortwin: CliRunner, cli_env: dict[str, str]) -> None:
    proc = mirrortwin("run", "smoke", "--policy", "null", "--no-plots")
    _ok(proc)
    folder = Path(cli_env["MIRRORTWIN_RESULTS"]) / "smoke-null"
    assert (folder / "report.md").is_file()
    assert not list(folder.glob("*.png"))
    assert f"results: {folder}" in proc.stdout


def test_same_seed_gives_identical_timeseries(
    mirrortwin: CliRunner, smoke_run: tuple[Path, str], tmp_path: Path
) -> None:
    first, _ = smoke_run
    again = tmp_path / "again"
    _ok(mirrortwin("run", "smoke", "--out", str(again), "--no-plots"))
    for name in ("timeseries.parquet", "migrations.parquet", "instances.parquet", "host_util.parquet"):
        assert_frame_equal(pd.read_parquet(first / name), pd.read_parquet(again / name), obj=name)


def test_compare_null_and_threshold(mirrortwin: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = mirrortwin("compare", "smoke", "--policies", "null,threshold", "--out", str(out))
    _ok(proc)
    table = pd.read_csv(out / "comparison.csv", index_col="policy", keep_default_na=False)  # a policy is named "null"
    assert list(table.index) == ["null", "threshold"]
    assert table.at["null", "migrations"] == 0
    assert table.at["null", "bytes_moved"] == 0
    for name in ("comparison.md", "comparison.png", "report.md"):
        assert (out / name).is_file(), name
    for policy in ("null", "threshold"):
        assert (out / policy / "report.md").is_file()
    markdown = (out / "comparison.md").read_text()
    assert markdown.startswith("| policy |") and "| null |" in markdown
    assert "](comparison.png)" in (out / "report.md").read_text()


def test_user_errors_in_a_subprocess(mirrortwin: CliRunner, cli_env: dict[str, str], tmp_path: Path) -> None:
    for args in (("run", "no-such-scenario"), ("run", "smoke", "--policy", "nope"), ("run", "smoke", "--set", "x")):
        proc = mirrortwin(*args)
        assert proc.returncode == 2, proc
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("mirrortwin: error: "), proc.stderr
        assert proc.stdout == ""


def test_missing_trace_reaches_the_user_intact(mirrortwin: CliRunner, cli_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(cli_env, MIRRORTWIN_TRACES=str(tmp_path / "none"), MIRRORTWIN_CACHE=str(tmp_path / "cache"))
    proc = mirrortwin("run", "smoke", env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "mirrortwin traces download" in proc.stderr
    assert str(tmp_path / "none") in proc.stderr
