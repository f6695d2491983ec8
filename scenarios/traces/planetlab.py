"""PlanetLab (CoMon) day folders as shipped with CloudSim: one file per VM, 288 CPU % lines, 5 min.

Rows follow the sorted file names (Python ``sorted`` on these ASCII names equals Java's ``File``
ordering), so row ``i`` is the same VM CloudSim's examples would get when given a sorted list. Names may
contain spaces and are kept verbatim as instance ids.

Speed matters (a day has ~1,000-1,500 files and scenarios load several days), so the folder is read as
raw bytes and parsed in one numpy call; only when that fast path finds a problem is the folder walked
line by line to name the offending file and line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scenarios.traces.errors import TraceFormatError
from scenarios.traces.resample import regrid_matrix
from scenarios.traces.trace_set import TraceSet

#: Native sampling interval and samples per file (24 h at 5 min).
STEP_S = 300.0
LINES_PER_FILE = 288

_DIGITS = b"0123456789"


def load_planetlab_day(folder: Path, *, step_s: float | None = None) -> TraceSet:
    """Load every VM file of one PlanetLab day folder.

    Args:
        folder: A day folder, e.g. ``.../planetlab/20110303``.
        step_s: Grid step; None keeps the native 300 s (other steps re-grid, see ``resample``).

    Returns:
        A TraceSet with ``cpu_util`` = CPU % / 100, one row per file in sorted name order.

    Raises:
        TraceFormatError: A file has a line that is not a non-negative integer, or not 288 lines, or
            the folder holds no files.
    """
    folder = Path(folder)
    names = sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))
    if not names:
        raise TraceFormatError(folder, None, "no VM files in PlanetLab day folder")
    contents: list[bytes] = []
    for name in names:
        with open(folder / name, "rb") as fh:
            raw = fh.read()
        # Tolerate CRLF and a missing final newline: they change nothing about the values.
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n")
        if raw and not raw.endswith(b"\n"):
            raw += b"\n"
        contents.append(raw)
    # Fast path: only digits and newlines, no empty line, exactly 288 lines in every file.
    blob = b"".join(contents)
    ok = (
        not blob.translate(None, _DIGITS + b"\n")
        and b"\n\n" not in blob
        and not blob.startswith(b"\n")
        and all(c.count(b"\n") == LINES_PER_FILE for c in contents)
    )
    if not ok:
        _raise_first_problem(folder, names, contents)
    values = np.array(blob.split(), dtype=np.int64).reshape(len(names), LINES_PER_FILE)
    cpu = (values.astype(np.float32) / np.float32(100.0)).astype(np.float32)
    step = STEP_S
    if step_s is not None and step_s != STEP_S:
        cpu = regrid_matrix(cpu, STEP_S, float(step_s))
        step = float(step_s)
    return TraceSet(
        name=f"planetlab/{folder.name}",
        instance_ids=tuple(names),
        step_s=step,
        cpu_util=cpu,
        start_offsets_s=np.zeros(len(names), dtype=np.float64),
        source=str(folder),
        extra={"native_step_s": str(STEP_S)},
    )


def _raise_first_problem(folder: Path, names: list[str], contents: list[bytes]) -> None:
    """Walk the files line by line and raise for the first malformed one (slow path, errors only)."""
    for name, content in zip(names, contents, strict=True):
        path = folder / name
        lines = content.decode("ascii", errors="replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if not (line.isascii() and line.isdigit()):
                raise TraceFormatError(path, i, f"expected an integer CPU %, got {line[:40]!r}")
        if len(lines) != LINES_PER_FILE:
            raise TraceFormatError(path, None, f"expected {LINES_PER_FILE} lines, found {len(lines)}")
    raise TraceFormatError(folder, None, "unexpected content (could not locate the bad line)")
