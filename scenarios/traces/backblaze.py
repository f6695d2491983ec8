"""Backblaze 2019 SMART subsets (``backblaze_smart_2019/*.csv.gz``) as a model-agnostic health table.

The files (see that folder's ``PROVENANCE.md``) are per-drive-model extracts of Backblaze's daily
"Drive Stats" with a ``failure`` label. Each model keeps a different set of SMART columns, and a host in
the twin or in a live fleet cannot report vendor-specific counters anyway, so every file is mapped to
the same few named health features, taken from the raw SMART attributes that **all four raw files
share** and that mean the same thing on every vendor:

===================== ============== ===================================================
feature               SMART column   meaning
===================== ============== ===================================================
``reallocated_sectors`` ``smart_5_raw``   sectors remapped to spares after a failed write/read
``pending_sectors``     ``smart_197_raw`` unstable sectors waiting to be remapped
``crc_errors``          ``smart_199_raw`` UDMA CRC errors on the link (cable, backplane)
``power_on_hours``      ``smart_9_raw``   age in hours of operation
``temperature_c``       ``smart_194_raw`` drive temperature in °C
===================== ============== ===================================================

What is left out and why:

* ``smart_187`` (reported uncorrectable), ``smart_188`` (command timeouts) and ``smart_198`` (offline
  uncorrectable) are strong failure signals but exist only in the two Seagate files; a feature missing
  for half the drives would teach a model the vendor, not the health.
* ``smart_1``/``smart_7`` (read/seek error rates) are vendor-encoded (Seagate packs two counters into one
  48-bit value), so their raw numbers are not comparable across models.
* ``ST4000DM000_last_day_all_q_normalised`` holds only the vendors' *normalised* 1-253 health scores, a
  different, non-invertible scale from the raw counters; mixing it in would need a second model, so it
  is not loaded (:func:`load_smart_file` refuses it with a message saying so).

Labels: in ``*_last_day_*`` files one row is one drive's last 2019 record and ``failure = 1`` marks the
day it failed. The TOSHIBA ``*_last_10_day_*`` file holds up to 10 daily rows per drive with
``failure = 1`` on *all* of a failed drive's last 10 days (the source authors' relabelling).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.traces.errors import TraceFormatError, TraceNotFoundError

#: Folder of the subsets under a traces root.
FOLDER = "backblaze_smart_2019"
SOURCE_URL = "https://www.backblaze.com/b2/hard-drive-test-data.html"

#: Health feature -> raw SMART column it is read from (same meaning on every vendor).
SMART_COLUMNS: dict[str, str] = {
    "reallocated_sectors": "smart_5_raw",
    "pending_sectors": "smart_197_raw",
    "crc_errors": "smart_199_raw",
    "power_on_hours": "smart_9_raw",
    "temperature_c": "smart_194_raw",
}
#: The model-agnostic health features, in column order.
HEALTH_FEATURES: tuple[str, ...] = tuple(SMART_COLUMNS)
#: Columns every subset has besides the SMART ones.
ID_COLUMNS: tuple[str, ...] = ("date", "serial_number", "model", "failure")

#: Drive models with a raw ``*_last_day_*`` file (one row per drive).
LAST_DAY_MODELS: tuple[str, ...] = (
    "HGST_HMS5C4040BLE640",
    "ST8000DM002",
    "ST8000NM0055",
    "TOSHIBA_MQ01ABF050",
)
#: Drive models with a raw ``*_last_10_day_*`` file (up to ten rows per drive).
TEN_DAY_MODELS: tuple[str, ...] = ("TOSHIBA_MQ01ABF050",)

#: Columns of the table :func:`load_smart_file` returns, in order.
TABLE_COLUMNS: tuple[str, ...] = ("drive_model", "serial_number", "date", "failure", *HEALTH_FEATURES)


class SmartDataNotFoundError(TraceNotFoundError):
    """The Backblaze SMART folder or one of its files is missing (not downloadable by ``traces download``)."""

    def __init__(self, missing: Path, searched: Sequence[Path]) -> None:
        self.trace = FOLDER
        self.searched = tuple(searched)
        self.download_name = ""
        self.source_url = SOURCE_URL
        where = ", ".join(str(p) for p in self.searched) or "(no folders given)"
        Exception.__init__(
            self,
            f"Backblaze SMART data {missing} not found; searched: {where}; "
            f"put the {FOLDER}/ subsets under the traces folder (MIRRORTWIN_TRACES); data from {SOURCE_URL}",
        )


def smart_folder(roots: Sequence[Path]) -> Path:
    """The first ``<root>/backblaze_smart_2019`` that exists.

    Raises:
        SmartDataNotFoundError: In none of ``roots``.
    """
    for root in roots:
        candidate = Path(root) / FOLDER
        if candidate.is_dir():
            return candidate
    raise SmartDataNotFoundError(Path(FOLDER), [Path(r) for r in roots])


def smart_file(folder: Path, model: str, window: str = "last_day") -> Path:
    """Path of one raw subset: ``<model>_<window>_all_q_raw.csv.gz`` (``window``: last_day or last_10_day)."""
    if window not in ("last_day", "last_10_day"):
        raise ValueError(f"window must be 'last_day' or 'last_10_day', not {window!r}")
    return Path(folder) / f"{model}_{window}_all_q_raw.csv.gz"


def load_smart_file(path: Path) -> pd.DataFrame:
    """Read one raw SMART subset and map it to the health features.

    Returns:
        Frame with :data:`TABLE_COLUMNS`: ``drive_model`` (the file's ``model``), ``serial_number``,
        ``date`` (``datetime64``), ``failure`` (int 0/1) and the health features as float64.

    Raises:
        SmartDataNotFoundError: The file does not exist.
        TraceFormatError: Not a readable CSV, a normalised-score file, a required column missing, or an
            empty/non-numeric/negative value, a label other than 0/1 (file, column and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise SmartDataNotFoundError(path, [path.parent])
    try:
        frame = pd.read_csv(path, dtype={"serial_number": str, "model": str, "date": str})
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TraceFormatError(path, None, f"not a readable CSV ({_one_line(exc)})") from None
    except pd.errors.EmptyDataError:
        raise TraceFormatError(path, None, "empty file (no header)") from None
    columns = list(frame.columns)
    if any(c.endswith("_normalized") for c in columns) and not any(c.endswith("_raw") for c in columns):
        raise TraceFormatError(
            path, 1, "holds normalised SMART scores (vendor 1-253 scale), not raw counters; only *_raw files are read"
        )
    missing = [c for c in (*ID_COLUMNS, *SMART_COLUMNS.values()) if c not in columns]
    if missing:
        raise TraceFormatError(path, 1, f"missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise TraceFormatError(path, None, "no data rows after the header")
    for column in ID_COLUMNS:
        _check_present(path, frame, column)
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    _check_rows(path, "date", dates.isna().to_numpy(), frame["date"], "is not a YYYY-MM-DD date")
    labels = pd.to_numeric(frame["failure"], errors="coerce")
    _check_rows(path, "failure", ~labels.isin([0, 1]).to_numpy(), frame["failure"], "is not 0 or 1")
    out = pd.DataFrame(
        {
            "drive_model": frame["model"].astype(str),
            "serial_number": frame["serial_number"].astype(str),
            "date": dates,
            "failure": labels.astype(np.int64),
        }
    )
    for feature, column in SMART_COLUMNS.items():
        values = pd.to_numeric(frame[column], errors="coerce")
        _check_rows(path, column, values.isna().to_numpy(), frame[column], "is empty or not a number")
        _check_rows(path, column, (values < 0).to_numpy(), frame[column], "is negative")
        out[feature] = values.astype(np.float64)
    return out


def load_backblaze(roots: Sequence[Path], *, window: str = "last_day") -> pd.DataFrame:
    """All raw subsets of one window, concatenated in :data:`LAST_DAY_MODELS`/:data:`TEN_DAY_MODELS` order.

    Args:
        roots: Trace roots searched for ``backblaze_smart_2019/`` (e.g. ``Settings.trace_roots``).
        window: ``last_day`` (one row per drive, four models) or ``last_10_day`` (TOSHIBA only).

    Raises:
        SmartDataNotFoundError, TraceFormatError: As for :func:`smart_folder` and :func:`load_smart_file`.
    """
    folder = smart_folder(roots)
    models = LAST_DAY_MODELS if window == "last_day" else TEN_DAY_MODELS
    frames = [load_smart_file(smart_file(folder, m, window)) for m in models]
    table = pd.concat(frames, ignore_index=True)
    if window == "last_day":
        duplicated = table.duplicated(["drive_model", "serial_number"])
        if duplicated.any():
            first = table.loc[duplicated].iloc[0]
            raise TraceFormatError(
                folder, None, f"drive {first['drive_model']}/{first['serial_number']} has more than one last-day row"
            )
    return table


def _check_present(path: Path, frame: pd.DataFrame, column: str) -> None:
    """Fail on the first empty cell of an identifying column."""
    _check_rows(path, column, frame[column].isna().to_numpy(), frame[column], "is empty")


def _check_rows(path: Path, column: str, bad: np.ndarray, raw: pd.Series, problem: str) -> None:
    """Raise a :class:`TraceFormatError` naming the first bad row's line (header = line 1), if any."""
    rows = np.flatnonzero(bad)
    if rows.size:
        row = int(rows[0])
        value = raw.iloc[row]
        raise TraceFormatError(path, row + 2, f"column {column!r}: {str(value)[:40]!r} {problem}")


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split())
