from __future__ import annotations

import numpy as np
import pytest

from scenarios.traces import TraceFormatError
from scenarios.traces.alibaba import load_alibaba_machine_usage

pytestmark = pytest.mark.traces


def test_slice_matches_provenance(traces_root):
    ts = load_alibaba_machine_usage(traces_root / "alibaba2018" / "machine_usage.csv.gz")
    assert ts.instance_ids == tuple(f"m_{i}" for i in range(1932, 1948))
    assert ts.step_s == 60.0
    assert ts.metrics() == ["cpu_util", "mem_util"]  # net/disk are normalised, not bytes/s
    assert ts.n_steps == 8 * 24 * 60  # 8 days of 60 s steps from t = 0
    live = ts.cpu_util > 0
    assert ts.cpu_util[live].min() >= 0.03 and ts.cpu_util.max() <= 0.94  # CPU % 3..94
    # m_1932 starts at t = 386,640 s; m_1947 ends at t = 188,370 s: zero outside their lifetimes
    assert not ts.cpu_util[0, : 386640 // 60].any() and ts.cpu_util[0, 386640 // 60] > 0
    assert ts.cpu_util[15, 188370 // 60] > 0 and not ts.cpu_util[15, 188370 // 60 + 1 :].any()
    # the 14 complete machines are present for (almost) all of the 8 days
    assert live[1:15].mean() > 0.99
    assert 0.30 < ts.cpu_util[live].mean() < 0.40  # row mean 34.8 %


def test_step_argument(traces_root):
    ts = load_alibaba_machine_usage(traces_root / "alibaba2018" / "machine_usage.csv.gz", step_s=300)
    assert ts.step_s == 300.0 and ts.n_steps == 8 * 24 * 12


def test_duplicates_and_order(tmp_path):
    p = tmp_path / "mu.csv"
    p.write_text("m_10,0,10,50,,,1,1,5\nm_2,0,20,40,,,1,1,5\nm_2,30,40,60,,,1,1,5\nm_2,130,60,80,,,1,1,5\n")
    ts = load_alibaba_machine_usage(p)
    assert ts.instance_ids == ("m_2", "m_10")
    np.testing.assert_allclose(ts.cpu_util[0], [0.3, 0.45, 0.6], rtol=1e-6)
    np.testing.assert_allclose(ts.mem_util[0], [0.5, 0.65, 0.8], rtol=1e-6)
    np.testing.assert_allclose(ts.cpu_util[1], [0.1, 0, 0], rtol=1e-6)


def test_bad_value_names_file_and_line(tmp_path):
    p = tmp_path / "mu.csv"
    p.write_text("m_1,0,10,50,,,1,1,5\nm_1,10,oops,50,,,1,1,5\n")
    with pytest.raises(TraceFormatError, match=r"mu\.csv:2: cpu_util_percent is not a number: 'oops'"):
        load_alibaba_machine_usage(p)


def test_too_many_fields_names_line(tmp_path):
    p = tmp_path / "mu.csv"
    p.write_text("m_1,0,10,50,,,1,1,5\nm_1,10,10,50,,,1,1,5,9,9\n")
    with pytest.raises(TraceFormatError, match=r"mu\.csv:2: malformed CSV"):
        load_alibaba_machine_usage(p)
