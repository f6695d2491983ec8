from __future__ import annotations

import numpy as np
import pytest

from scenarios.traces import TraceFormatError
from scenarios.traces.planetlab import load_planetlab_day

pytestmark = pytest.mark.traces

# (series, mean CPU %) per day, from planetlab/PROVENANCE.md
DAYS = {
    "20110303": (1052, 12.31),
    "20110306": (898, 11.44),
    "20110309": (1061, 10.70),
    "20110322": (1516, 9.26),
    "20110325": (1078, 10.56),
    "20110409": (1358, 11.12),
    "20110411": (1233, 11.56),
    "20110412": (1054, 11.54),
}


@pytest.mark.parametrize("day", sorted(DAYS))
def test_day_matches_provenance(traces_root, day):
    ts = load_planetlab_day(traces_root / "planetlab" / day)
    n, mean_pct = DAYS[day]
    assert ts.cpu_util.shape == (n, 288)
    assert ts.cpu_util.dtype == np.float32
    assert ts.step_s == 300.0 and ts.name == f"planetlab/{day}"
    assert round(float(ts.cpu_util.mean()) * 100, 2) == mean_pct
    assert ts.cpu_util.min() >= 0.0 and ts.cpu_util.max() <= 0.99
    assert list(ts.instance_ids) == sorted(ts.instance_ids)
    assert ts.metrics() == ["cpu_util"]


def test_names_with_spaces_are_kept(traces_root):
    # PROVENANCE: 245 file names across the 8 days contain a space
    ids = [i for day in DAYS for i in load_planetlab_day(traces_root / "planetlab" / day).instance_ids]
    assert len(ids) == 9250
    assert sum(" " in i for i in ids) == 245


def test_rows_follow_sorted_names(traces_root):
    folder = traces_root / "planetlab" / "20110303"
    ts = load_planetlab_day(folder)
    k = len(ts.instance_ids) // 2
    expected = np.loadtxt(folder / ts.instance_ids[k], dtype=np.int64)
    np.testing.assert_allclose(ts.cpu_util[k], expected / 100.0, rtol=1e-6)


def test_other_step_regrids(traces_root):
    ts = load_planetlab_day(traces_root / "planetlab" / "20110303", step_s=600)
    assert ts.cpu_util.shape == (1052, 144) and ts.step_s == 600
    assert round(float(ts.cpu_util.mean()) * 100, 2) == 12.31


def _write_day(tmp_path, files):
    day = tmp_path / "20990101"
    day.mkdir()
    for name, lines in files.items():
        (day / name).write_text("".join(f"{x}\n" for x in lines))
    return day


def test_non_integer_line_names_file_and_line(tmp_path):
    bad = ["5"] * 288
    bad[41] = "4.5"
    day = _write_day(tmp_path, {"a vm": ["1"] * 288, "b_vm": bad})
    with pytest.raises(TraceFormatError) as err:
        load_planetlab_day(day)
    msg = str(err.value)
    assert "b_vm:42:" in msg and "4.5" in msg and "\n" not in msg


def test_wrong_line_count_names_file(tmp_path):
    day = _write_day(tmp_path, {"a": ["1"] * 288, "short one": ["2"] * 287})
    with pytest.raises(TraceFormatError, match=r"short one: expected 288 lines, found 287"):
        load_planetlab_day(day)


def test_blank_line_is_reported(tmp_path):
    lines = ["3"] * 288
    lines[9] = ""
    day = _write_day(tmp_path, {"x": lines})
    with pytest.raises(TraceFormatError, match=r"x:10:"):
        load_planetlab_day(day)


def test_crlf_and_missing_final_newline_are_accepted(tmp_path):
    day = tmp_path / "d"
    day.mkdir()
    (day / "vm").write_bytes(b"\r\n".join([b"7"] * 288))
    ts = load_planetlab_day(day)
    np.testing.assert_allclose(ts.cpu_util, 0.07)


def test_empty_folder(tmp_path):
    with pytest.raises(TraceFormatError, match="no VM files"):
        load_planetlab_day(tmp_path)
