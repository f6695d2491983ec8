"""The Backblaze SMART loader on small synthetic files: the feature mapping and one clear error per mistake."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from scenarios.traces import TraceFormatError, TraceNotFoundError
from scenarios.traces.backblaze import (
    HEALTH_FEATURES,
    LAST_DAY_MODELS,
    TABLE_COLUMNS,
    SmartDataNotFoundError,
    load_backblaze,
    load_smart_file,
    smart_file,
    smart_folder,
)

# The shared columns plus two a real file has but the loader drops (smart_1, smart_187).
HEADER = (
    "date,serial_number,model,capacity_bytes,failure,"
    "smart_1_raw,smart_5_raw,smart_9_raw,smart_187_raw,smart_194_raw,smart_197_raw,smart_199_raw"
)


def _write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join([header, *lines]) + "\n").encode()))
    return path


def _rows(model: str = "M1", prefix: str = "S") -> list[str]:
    return [
        f"2019-12-31,{prefix}1,{model},4000,0,123.0,0.0,17117.0,0.0,29.0,0.0,1.0",
        f"2019-05-02,{prefix}2,{model},4000,1,456.0,88.0,20000.0,4.0,35.0,16.0,0.0",
    ]


def test_raw_columns_map_to_named_features(tmp_path):
    table = load_smart_file(_write(tmp_path / "m.csv.gz", _rows()))
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["failure"].tolist() == [0, 1]
    failed = table.iloc[1]
    assert failed["drive_model"] == "M1" and failed["serial_number"] == "S2"
    assert failed["reallocated_sectors"] == 88.0  # smart_5
    assert failed["pending_sectors"] == 16.0  # smart_197
    assert failed["crc_errors"] == 0.0  # smart_199
    assert failed["power_on_hours"] == 20000.0  # smart_9
    assert failed["temperature_c"] == 35.0  # smart_194
    assert str(table["date"].iloc[1].date()) == "2019-05-02"
    assert set(HEALTH_FEATURES) <= set(table.columns)


def test_missing_column_names_file_and_column(tmp_path):
    header = HEADER.replace(",smart_197_raw", "")
    lines = [",".join(r.split(",")[:10] + r.split(",")[11:]) for r in _rows()]
    path = _write(tmp_path / "m.csv.gz", lines, header)
    with pytest.raises(TraceFormatError, match=r"m\.csv\.gz:1: missing column\(s\) smart_197_raw"):
        load_smart_file(path)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (
            "2019-12-31,S3,M1,4000,0,1.0,x,1.0,0.0,30.0,0.0,0.0",
            r":4: column 'smart_5_raw': 'x' is empty or not a number",
        ),
        ("2019-12-31,S3,M1,4000,0,1.0,,1.0,0.0,30.0,0.0,0.0", r":4: column 'smart_5_raw'"),
        ("2019-12-31,S3,M1,4000,0,1.0,1.0,1.0,0.0,30.0,-2.0,0.0", r":4: column 'smart_197_raw': '-2.0' is negative"),
        ("2019-12-31,S3,M1,4000,2,1.0,1.0,1.0,0.0,30.0,0.0,0.0", r":4: column 'failure': '2' is not 0 or 1"),
        ("31/12/2019,S3,M1,4000,0,1.0,1.0,1.0,0.0,30.0,0.0,0.0", r":4: column 'date': '31/12/2019' is not a YYYY"),
        ("2019-12-31,,M1,4000,0,1.0,1.0,1.0,0.0,30.0,0.0,0.0", r":4: column 'serial_number'"),
    ],
)
def test_bad_value_names_file_line_and_column(tmp_path, bad, match):
    path = _write(tmp_path / "m.csv.gz", [*_rows(), bad])
    with pytest.raises(TraceFormatError, match=match) as info:
        load_smart_file(path)
    assert str(path) in str(info.value)


def test_normalised_file_is_refused_with_the_reason(tmp_path):
    header = "date,serial_number,model,capacity_bytes,failure,smart_5_normalized,smart_9_normalized"
    path = _write(tmp_path / "n.csv.gz", ["2019-12-31,S1,M,4000,0,100.0,81.0"], header)
    with pytest.raises(TraceFormatError, match="normalised SMART scores"):
        load_smart_file(path)


def test_unreadable_and_empty_files(tmp_path):
    corrupt = tmp_path / "c.csv.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(TraceFormatError, match=r"c\.csv\.gz: not a readable CSV"):
        load_smart_file(corrupt)
    only_header = _write(tmp_path / "h.csv.gz", [])
    with pytest.raises(TraceFormatError, match="no data rows"):
        load_smart_file(only_header)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SmartDataNotFoundError, match=r"nope\.csv\.gz"):
        load_smart_file(tmp_path / "nope.csv.gz")
    with pytest.raises(TraceNotFoundError, match="backblaze_smart_2019 not found; searched: "):
        smart_folder([tmp_path / "a", tmp_path / "b"])


def test_load_backblaze_concatenates_every_model_and_rejects_repeats(tmp_path):
    folder = tmp_path / "backblaze_smart_2019"
    for i, model in enumerate(LAST_DAY_MODELS):
        _write(smart_file(folder, model), _rows(model, prefix=f"D{i}-"))
    table = load_backblaze([tmp_path / "elsewhere", tmp_path])
    assert len(table) == 2 * len(LAST_DAY_MODELS)
    assert table["drive_model"].unique().tolist() == list(LAST_DAY_MODELS)
    _write(
        smart_file(folder, LAST_DAY_MODELS[1]),
        _rows(LAST_DAY_MODELS[1], prefix="D1-") + _rows(LAST_DAY_MODELS[1], prefix="D1-"),
    )
    with pytest.raises(TraceFormatError, match="more than one last-day row"):
        load_backblaze([tmp_path])
