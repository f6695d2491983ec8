from __future__ import annotations

import numpy as np
import pytest

from scenarios.traces import TraceFormatError
from scenarios.traces.azure import load_azure_v1

pytestmark = pytest.mark.traces

# stem -> (VMs, steps), from azure_v1_sample/PROVENANCE.md
FILES = {
    "microsoft_avg_100": (100, 8004),
    "microsoft_max_100": (100, 8004),
    "periodic_avg_78": (78, 8400),
    "periodic_max_78": (78, 8400),
}


@pytest.mark.parametrize("stem", sorted(FILES))
def test_file_matches_provenance(traces_root, stem):
    ts = load_azure_v1(traces_root / "azure_v1_sample" / f"{stem}.csv.gz")
    assert ts.cpu_util.shape == FILES[stem]
    assert ts.step_s == 300.0 and ts.name == f"azure/{stem}"
    assert ts.cpu_util.min() >= 0.0007 and ts.cpu_util.max() <= 1.0  # CPU % 0.07..100
    if stem.startswith("periodic"):
        assert all(i.split(" ")[1] in {"1", "8", "24"} for i in ts.instance_ids)


def test_avg_never_exceeds_max(traces_root):
    avg = load_azure_v1(traces_root / "azure_v1_sample" / "microsoft_avg_100.csv.gz")
    mx = load_azure_v1(traces_root / "azure_v1_sample" / "microsoft_max_100.csv.gz")
    assert avg.instance_ids == mx.instance_ids
    assert (avg.cpu_util <= mx.cpu_util + 1e-6).all()


def test_non_numeric_cell_names_line(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("step,a,b\n0,1.0,2.0\n1,x,3.0\n")
    with pytest.raises(TraceFormatError, match=r"w\.csv:3: column 'a' has a non-numeric value"):
        load_azure_v1(p)


def test_missing_step_column_and_broken_grid(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(TraceFormatError, match=r"w\.csv:1: expected a 'step' column"):
        load_azure_v1(p)
    p.write_text("step,a\n0,1\n2,1\n")
    with pytest.raises(TraceFormatError, match=r"w\.csv:3: step 2 breaks"):
        load_azure_v1(p)


def test_small_file_values(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("step,7 24,9 1\n0,50,10\n1,100,20\n")
    ts = load_azure_v1(p)
    assert ts.instance_ids == ("7 24", "9 1")
    np.testing.assert_allclose(ts.cpu_util, [[0.5, 1.0], [0.1, 0.2]])
