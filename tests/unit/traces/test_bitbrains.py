from __future__ import annotations

import gzip
import shutil
import time

import numpy as np
import pytest

from scenarios.traces import TraceFormatError
from scenarios.traces.bitbrains import HEADER, load_bitbrains

pytestmark = pytest.mark.traces

SEP = ";\t"


def _vm_csv(rows: list[list[float]]) -> bytes:
    lines = [SEP.join(HEADER)] + [SEP.join(repr(x) for x in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _row(t, cpu_pct, mem_kb=1024.0, cap_kb=4096.0, net_kb=1.0):
    # t, cores, cap MHz, usage MHz, usage %, mem cap, mem use, disk r, disk w, net rx, net tx
    return [t, 2, 5000.0, 0.0, cpu_pct, cap_kb, mem_kb, 2.0, 3.0, net_kb, 5.0]


def test_three_real_vms(traces_root, tmp_path):
    src = traces_root / "bitbrains" / "rnd" / "2013-8"
    for vm in (1, 2, 11):
        shutil.copy(src / f"{vm}.csv.gz", tmp_path / f"{vm}.csv.gz")
    ts = load_bitbrains(tmp_path)
    assert ts.instance_ids == ("1", "2", "11")  # numeric order, not text order
    assert ts.step_s == 300.0
    assert set(ts.metrics()) == {"cpu_util", "mem_util", "net_rx_bps", "net_tx_bps", "disk_read_bps", "disk_write_bps"}
    # VM 1 from MANIFEST.tsv: 2 cores, 5851.9989 MHz, 8388608 KB (= 8 GiB in KiB)
    assert ts.cpu_capacity_mhz[0] == pytest.approx(5851.9989)
    assert ts.mem_capacity_bytes[0] == 8 * 2**30
    # first row of 1.csv: 12.766...% CPU, 1308620/8388608 memory, 11.0 KB/s received -> step 0 (alone in bin)
    assert ts.extra["origin_epoch_s"] == "1375308000"
    assert ts.cpu_util[0, 0] == pytest.approx(0.12766667, rel=1e-6)
    assert ts.mem_util[0, 0] == pytest.approx(1308620 / 8388608, rel=1e-6)
    assert ts.net_rx_bps[0, 0] == pytest.approx(11.0 * 1024)
    assert ts.mem_util.max() <= 1.0 and ts.cpu_util.min() >= 0.0


@pytest.mark.slow
def test_full_month_matches_provenance_and_cache(traces_root, tmp_path):
    folder = traces_root / "bitbrains" / "rnd" / "2013-8"
    start = time.perf_counter()
    ts = load_bitbrains(folder, cache_dir=tmp_path)
    cold = time.perf_counter() - start
    assert ts.n_instances == 400
    # 2013-07-31 22:00 to 2013-08-30 21:55 UTC on a 300 s grid
    assert ts.n_steps == 8640
    ids = [int(i) for i in ts.instance_ids]
    assert ids == sorted(ids)
    assert 1.0 < ts.cpu_util.max() <= 1.12  # PROVENANCE: CPU % up to 111.7, kept
    assert 0.06 < ts.cpu_util.mean() < 0.08  # row mean 7.05 %
    assert not np.isnan(ts.cpu_capacity_mhz).any() and (ts.cpu_capacity_mhz > 0).all()
    # a VM starting late (latest first timestamp 1376559668) has zero demand before it exists
    late = (ts.cpu_util > 0).argmax(axis=1).max()
    assert late >= (1376559668 - 1375308000) // 300 - 1
    start = time.perf_counter()
    warm = load_bitbrains(folder, cache_dir=tmp_path)
    assert time.perf_counter() - start < cold
    for m in ts.metrics():
        np.testing.assert_array_equal(getattr(ts, m), getattr(warm, m))
    assert warm.instance_ids == ts.instance_ids and warm.extra == ts.extra


def test_duplicates_averaged_gaps_filled_and_outside_lifetime_zero(tmp_path):
    t0 = 1_000_000_100  # floors to t0 - 200 on a 300 s grid
    vm1 = [_row(t0, 10.0), _row(t0, 30.0), _row(t0 + 300, 50.0), _row(t0 + 1200, 80.0)]
    vm2 = [_row(t0 + 600, 40.0, mem_kb=2048.0)]
    (tmp_path / "1.csv.gz").write_bytes(gzip.compress(_vm_csv(vm1)))
    (tmp_path / "2.csv").write_bytes(_vm_csv(vm2))  # plain CSV accepted too
    ts = load_bitbrains(tmp_path)
    assert ts.extra["origin_epoch_s"] == str(t0 - 200)
    np.testing.assert_allclose(ts.cpu_util[0], [0.2, 0.5, 0.6, 0.7, 0.8], rtol=1e-6)
    np.testing.assert_allclose(ts.cpu_util[1], [0, 0, 0.4, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(ts.mem_util[1], [0, 0, 0.5, 0, 0])
    np.testing.assert_allclose(ts.disk_write_bps[0], 3 * 1024.0)


def test_bogus_memory_capacity_row_is_interpolated(tmp_path):
    rows = [_row(0, 1.0, mem_kb=1000.0), _row(300, 1.0, mem_kb=12e6, cap_kb=6144.0), _row(600, 1.0, mem_kb=3000.0)]
    (tmp_path / "5.csv").write_bytes(_vm_csv(rows))
    ts = load_bitbrains(tmp_path)
    np.testing.assert_allclose(ts.mem_util[0], [1000 / 4096, 2000 / 4096, 3000 / 4096], rtol=1e-6)


def test_bad_value_names_file_and_line(tmp_path):
    body = _vm_csv([_row(0, 1.0), _row(300, 2.0)]).decode().replace("2.0;\t4096", "abc;\t4096")
    (tmp_path / "7.csv").write_text(body)
    with pytest.raises(TraceFormatError) as err:
        load_bitbrains(tmp_path)
    assert "7.csv:3:" in str(err.value) and "CPU usage [%]" in str(err.value)


def test_missing_field_names_file_and_line(tmp_path):
    text = _vm_csv([_row(0, 1.0), _row(300, 2.0)]).decode().splitlines()
    text[2] = text[2].rsplit(SEP, 1)[0]
    (tmp_path / "8.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(TraceFormatError, match=r"8\.csv:3: expected 11 fields, found 10"):
        load_bitbrains(tmp_path)


def test_wrong_header(tmp_path):
    (tmp_path / "9.csv").write_text("time;cpu\n1;2\n")
    with pytest.raises(TraceFormatError, match=r"9\.csv:1: unexpected header"):
        load_bitbrains(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(TraceFormatError, match="no <vm_id>"):
        load_bitbrains(tmp_path)
