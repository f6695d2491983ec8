"""Azure Public Dataset V1 sample (from the DataCenterSim R package): wide CSVs of per-VM CPU %.

Each file (``microsoft_avg_100``, ``microsoft_max_100``, ``periodic_avg_78``, ``periodic_max_78``) has
a ``step`` column (0-based, 300 s apart) and one column per VM; the column names are the VM ids
(``<id>`` or ``"<id> <period_hours>"`` in the periodic files). The grid is already regular and gap-free,
so loading is a transpose; ``cpu_util`` = CPU % / 100.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.traces.errors import TraceFormatError
from scenarios.traces.resample import regrid_matrix
from scenarios.traces.trace_set import TraceSet

STEP_S = 300.0
SUBSETS: tuple[str, ...] = ("microsoft_avg_100", "microsoft_max_100", "periodic_avg_78", "periodic_max_78")
DEFAULT_SUBSET = "microsoft_avg_100"


def load_azure_v1(path: Path, *, step_s: float | None = None) -> TraceSet:
    """Load one Azure V1 sample file.

    Args:
        path: ``.../azure_v1_sample/<stem>.csv.gz`` (or an uncompressed ``.csv``).
        step_s: Grid step; None keeps the native 300 s.

    Returns:
        TraceSet named ``azure/<stem>``, one row per VM column in file order.

    Raises:
        TraceFormatError: Missing ``step`` column, non-numeric cells (line named), or steps that are
            not 0, 1, 2, ...
    """
    path = Path(path)
    stem = path.name.removesuffix(".gz").removesuffix(".csv")
    try:
        frame = pd.read_csv(path, engine="c", dtype={"step": np.int64})
    except (ValueError, pd.errors.ParserError) as exc:
        raise TraceFormatError(path, _line_of(exc), f"not a numeric wide CSV ({_first_line(exc)})") from None
    if frame.columns.size < 2 or frame.columns[0] != "step":
        raise TraceFormatError(path, 1, "expected a 'step' column followed by one column per VM")
    steps = frame["step"].to_numpy()
    bad_step = np.flatnonzero(steps != np.arange(len(steps)))
    if bad_step.size:
        raise TraceFormatError(path, int(bad_step[0]) + 2, f"step {steps[bad_step[0]]} breaks the 0,1,2,... grid")
    values = frame.iloc[:, 1:]
    non_numeric = [c for c, dt in values.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if non_numeric:
        col = non_numeric[0]
        bad = pd.to_numeric(values[col], errors="coerce").isna().to_numpy()
        raise TraceFormatError(path, int(np.flatnonzero(bad)[0]) + 2, f"column {col!r} has a non-numeric value")
    matrix = values.to_numpy(dtype=np.float64)
    if np.isnan(matrix).any():
        row, col = np.argwhere(np.isnan(matrix))[0]
        raise TraceFormatError(path, int(row) + 2, f"empty value in column {values.columns[col]!r}")
    cpu = np.ascontiguousarray((matrix.T / 100.0).astype(np.float32))
    step = STEP_S
    if step_s is not None and step_s != STEP_S:
        cpu = regrid_matrix(cpu, STEP_S, float(step_s))
        step = float(step_s)
    return TraceSet(
        name=f"azure/{stem}",
        instance_ids=tuple(str(c) for c in values.columns),
        step_s=step,
        cpu_util=cpu,
        start_offsets_s=np.zeros(len(values.columns), dtype=np.float64),
        source=str(path),
        extra={"statistic": "max" if "_max_" in stem else "avg"},
    )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception message (pandas messages can span lines)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _line_of(exc: BaseException) -> int | None:
    """Line number from a pandas C-parser message such as ``Error tokenizing data ... line 7``."""
    m = re.search(r"line (\d+)", str(exc))
    return int(m.group(1)) if m else None
