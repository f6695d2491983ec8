"""``mirrortwin sweep`` end to end: one command gives the snapshot-interval what-if table and plot."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from tests.e2e.conftest import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.traces]


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def test_snapshot_interval_sweep_writes_the_whatif(mirrortwin: CliRunner, tmp_path) -> None:
    out = tmp_path / "sweep"
    proc = mirrortwin(
        "sweep", "smoke", "--param", "rma.snapshot_interval_s", "--values", "60,900",
        "--set", "duration_s=7200", "--out", str(out),
    )  # fmt: skip
    _ok(proc)
    table = pd.read_csv(out / "sweep.csv", index_col=0)
    assert list(table.index) == [60, 900]
    # mirroring more often costs bandwidth and protects data
    assert table.loc[60, "mirror_bandwidth_mbps"] > table.loc[900, "mirror_bandwidth_mbps"]
    assert table.loc[60, "data_at_risk_mean_mb"] < table.loc[900, "data_at_risk_mean_mb"]
    assert (out / "whatif.png").read_bytes().startswith(b"\x89PNG")
    assert "| rma.snapshot_interval_s |" in (out / "sweep.md").read_text()


def test_a_bad_sweep_value_is_one_line(mirrortwin: CliRunner, tmp_path) -> None:
    proc = mirrortwin(
        "sweep", "smoke", "--param", "rma.snapshot_interval_s", "--values", "60,-5", "--out", str(tmp_path)
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("mirrortwin: error:") and "snapshot_interval_s" in err and "\n" not in err
