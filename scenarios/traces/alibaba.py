"""Alibaba cluster-trace-v2018 ``machine_usage`` (long, headerless, irregular) on a regular grid.

Columns, from ``cluster-trace-v2018/schema.txt``: machine_id, time_stamp (s from trace start),
cpu_util_percent, mem_util_percent, mem_gps, mkpi, net_in, net_out, disk_io_percent.

Only CPU and memory are loaded (``cpu_util``, ``mem_util`` = percent / 100). ``net_in``/``net_out`` are
*normalised* to [0, 100] with an unpublished scale and ``disk_io_percent`` is a utilisation, not a
rate, so none of them can honestly fill a ``*_bps`` metric: those stay None rather than carry a wrong
unit. Machines sample every 10 s to hours (median 60 s); samples are resampled with
:mod:`scenarios.traces.resample` (default step 60 s, grid from t = 0 of the trace), so a machine's
steps before its first sample or after its last are 0 (it was not in the slice) and gaps inside are
interpolated. Rows are ordered by numeric machine id (``m_2`` before ``m_10``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.traces.errors import TraceFormatError
from scenarios.traces.resample import resample_to_grid
from scenarios.traces.trace_set import TraceSet

DEFAULT_STEP_S = 60.0
COLUMNS: tuple[str, ...] = (
    "machine_id",
    "time_stamp",
    "cpu_util_percent",
    "mem_util_percent",
    "mem_gps",
    "mkpi",
    "net_in",
    "net_out",
    "disk_io_percent",
)
_NUMERIC = ("time_stamp", "cpu_util_percent", "mem_util_percent")


def load_alibaba_machine_usage(path: Path, *, step_s: float | None = None) -> TraceSet:
    """Load ``machine_usage.csv[.gz]`` onto a regular grid.

    Args:
        path: The machine_usage file.
        step_s: Grid step in seconds; None gives 60 s.

    Returns:
        TraceSet with ``cpu_util`` and ``mem_util``; ``extra['filled_steps']`` counts interpolated cells.

    Raises:
        TraceFormatError: Wrong column count, or a non-numeric / empty time, CPU or memory value
            (file and line named).
    """
    path = Path(path)
    step = float(step_s) if step_s is not None else DEFAULT_STEP_S
    try:
        frame = pd.read_csv(
            path,
            header=None,
            names=list(COLUMNS),
            dtype={"machine_id": str},
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        m = re.search(r"line (\d+)", str(exc))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceFormatError(path, int(m.group(1)) if m else None, f"malformed CSV ({first})") from None
    if frame.empty:
        raise TraceFormatError(path, None, "no rows")
    numeric = {}
    for col in _NUMERIC:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(values))
        if bad.size:
            raw = frame[col].iloc[bad[0]]
            raise TraceFormatError(path, int(bad[0]) + 1, f"{col} is not a number: {raw!r}")
        numeric[col] = values
    ids = frame["machine_id"].to_numpy(dtype=object)
    if pd.isna(ids).any():
        raise TraceFormatError(path, int(np.flatnonzero(pd.isna(ids))[0]) + 1, "empty machine_id")
    machines = sorted(set(ids.tolist()), key=_machine_sort_key)
    row_of = {m: i for i, m in enumerate(machines)}
    rows = np.fromiter((row_of[m] for m in ids), dtype=np.int64, count=len(ids))
    values = np.column_stack([numeric["cpu_util_percent"] / 100.0, numeric["mem_util_percent"] / 100.0])
    grid = resample_to_grid(rows, numeric["time_stamp"], values, len(machines), step, origin_s=0.0)
    return TraceSet(
        name="alibaba/machine_usage",
        instance_ids=tuple(machines),
        step_s=step,
        cpu_util=grid.values[0],
        mem_util=grid.values[1],
        start_offsets_s=np.zeros(len(machines), dtype=np.float64),
        source=str(path),
        extra={
            "filled_steps": str(int(grid.filled_steps[0])),
            "not_loaded": "net_in/net_out (normalised 0-100, unknown scale), disk_io_percent, mem_gps, mkpi",
        },
    )


def _machine_sort_key(machine_id: str) -> tuple[int, str]:
    """Numeric order for ids like ``m_1933``; ids without a number sort after, by text."""
    m = re.search(r"(\d+)$", machine_id)
    return (int(m.group(1)), machine_id) if m else (1 << 62, machine_id)
