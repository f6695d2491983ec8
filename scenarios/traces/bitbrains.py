"""Bitbrains GWA-T-12 "Rnd" per-VM CSVs (``rnd/<month>/<vm_id>.csv.gz``) on a regular grid.

Format quirks handled here (see ``bitbrains/PROVENANCE.md``):

* The separator is ``;`` followed by a TAB. Tabs are deleted and each file parsed as ``;``-separated
  by pyarrow's C++ reader (files in parallel threads), because a two-character separator forces
  pandas onto its pure-Python engine, many times slower on the 3.4 M rows of a month.
* ``Timestamp [ms]`` holds Unix epoch **seconds**.
* Samples are nominally 300 s apart but irregular, with duplicates and gaps; they are resampled with
  :mod:`scenarios.traces.resample` onto one grid for all VMs (default 300 s), anchored at the earliest
  timestamp of the month floored to the step. Several samples in one step are averaged; empty steps
  inside a VM's lifetime are linearly interpolated; steps before a VM's first sample or after its last
  are 0 because the VM did not exist then (a few VMs start days into the month).
* ``CPU usage [%]`` / 100 gives ``cpu_util``; it exceeds 1 in about 2 % of rows (max 1.117) and is kept
  as measured, since clipping would hide real over-commitment.
* ``mem_util`` = ``Memory usage [KB]`` / ``Memory capacity provisioned [KB]`` row by row (capacity can
  change within a series). A row whose capacity is 0 or below its usage (71 of 3.45 M rows in 2013-8,
  e.g. 12 GiB used of "6,144 KB" during a re-provisioning) has a bogus capacity, so it counts as
  missing for memory and the resampler interpolates over it; ``mem_util`` thus stays within 0-1.
* "KB" is taken as KiB (1,024 bytes): provisioned memory values are exact binary multiples
  (e.g. 8,388,608 KB = 8 GiB), which only makes sense in KiB, and the throughput columns come from the
  same monitoring tool, so disk and network KB/s are multiplied by 1,024 to give bytes/s.
* Capacities (CPU MHz, memory bytes) come from each VM's first row, except that a first row of
  zeros (6 VMs in 2013-8 start with an all-zero placeholder row) is skipped in favour of the first row
  with a positive capacity; NaN if there is none.

Rows are ordered by numeric VM id. Because a cold parse of a month takes seconds, ``cache_dir`` keeps
the resampled matrices in an ``.npz`` keyed on every file's path, size and mtime plus the step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from scenarios.traces.errors import TraceFormatError
from scenarios.traces.resample import resample_to_grid
from scenarios.traces.trace_set import TraceSet

DEFAULT_STEP_S = 300.0
#: Bytes per "KB" in the Bitbrains columns (KiB; see the module docstring for why).
BYTES_PER_KB = 1024.0

HEADER: tuple[str, ...] = (
    "Timestamp [ms]",
    "CPU cores",
    "CPU capacity provisioned [MHZ]",
    "CPU usage [MHZ]",
    "CPU usage [%]",
    "Memory capacity provisioned [KB]",
    "Memory usage [KB]",
    "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]",
    "Network received throughput [KB/s]",
    "Network transmitted throughput [KB/s]",
)
_USED = (0, 1, 2, 4, 5, 6, 7, 8, 9, 10)  # header indices the loader needs
_COLS = [f"c{i}" for i in range(len(HEADER))]
_KEEP = [_COLS[i] for i in _USED]
_FILE_RE = re.compile(r"^(\d+)\.csv(\.gz)?$")
#: Bump when the cached arrays' meaning changes, so stale caches are ignored.
_CACHE_VERSION = 2
_METRICS = ("cpu_util", "mem_util", "net_rx_bps", "net_tx_bps", "disk_read_bps", "disk_write_bps")


@dataclass(frozen=True)
class _VmSamples:
    """Parsed columns of one VM file (only those the loader uses)."""

    times_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]  # (rows, 6) in _METRICS order
    cpu_capacity_mhz: float
    mem_capacity_bytes: float
    cpu_cores: float


def vm_files(folder: Path) -> list[tuple[int, Path]]:
    """``(vm_id, path)`` of every ``<id>.csv[.gz]`` in ``folder``, ordered by numeric id."""
    found = []
    for entry in os.scandir(folder):
        m = _FILE_RE.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    found.sort()
    return found


def load_bitbrains(folder: Path, *, step_s: float | None = None, cache_dir: Path | None = None) -> TraceSet:
    """Load all VM files of a Bitbrains month folder onto one regular grid.

    Args:
        folder: e.g. ``.../bitbrains/rnd/2013-8``.
        step_s: Grid step in seconds; None gives 300 s.
        cache_dir: Folder for the parsed cache; None disables caching.

    Returns:
        TraceSet with all six metrics, capacities, and ``extra`` holding ``origin_epoch_s`` (Unix time
        of step 0) and ``filled_steps`` (interpolated cells of ``cpu_util``).

    Raises:
        TraceFormatError: No VM files, a wrong header, or a malformed line (file and line named).
    """
    folder = Path(folder)
    step = float(step_s) if step_s is not None else DEFAULT_STEP_S
    files = vm_files(folder)
    if not files:
        raise TraceFormatError(folder, None, "no <vm_id>.csv.gz files in Bitbrains folder")
    name = f"bitbrains/{folder.parent.name}/{folder.name}"
    cache_path = _cache_path(cache_dir, folder, files, step) if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        cached = _read_cache(cache_path, name, folder, step)
        if cached is not None:
            return cached

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        parsed = list(pool.map(_parse_vm_file, [p for _, p in files]))

    rows = np.concatenate([np.full(len(s.times_s), i, dtype=np.int64) for i, s in enumerate(parsed)])
    times = np.concatenate([s.times_s for s in parsed])
    values = np.concatenate([s.values for s in parsed])
    grid = resample_to_grid(rows, times, values, len(files), step)
    ts = TraceSet(
        name=name,
        instance_ids=tuple(str(vm_id) for vm_id, _ in files),
        step_s=step,
        **{m: grid.values[k] for k, m in enumerate(_METRICS)},  # type: ignore[arg-type]
        cpu_capacity_mhz=np.array([s.cpu_capacity_mhz for s in parsed], dtype=np.float64),
        mem_capacity_bytes=np.array([s.mem_capacity_bytes for s in parsed], dtype=np.float64),
        cpu_cores=np.array([s.cpu_cores for s in parsed], dtype=np.float64),
        start_offsets_s=np.zeros(len(files), dtype=np.float64),
        source=str(folder),
        extra={
            "origin_epoch_s": str(int(grid.origin_s)),
            "filled_steps": str(int(grid.filled_steps[0])),
            "bytes_per_kb": str(int(BYTES_PER_KB)),
        },
    )
    if cache_path is not None:
        _write_cache(cache_path, ts)
    return ts


def _parse_vm_file(path: Path) -> _VmSamples:
    """Decompress, check the header, and parse one VM file with pyarrow (runs in a worker thread)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = zlib.decompress(raw, 31)
        except zlib.error as exc:
            raise TraceFormatError(path, None, f"corrupt gzip data ({exc})") from None
    text = raw.translate(None, b"\t\r")
    header_end = text.find(b"\n")
    header = text[: header_end if header_end >= 0 else len(text)].decode("utf-8", errors="replace")
    if tuple(h.strip() for h in header.split(";")) != HEADER:
        raise TraceFormatError(path, 1, f"unexpected header {header[:80]!r}")
    if header_end < 0 or not text[header_end + 1 :].strip():
        raise TraceFormatError(path, None, "no data rows after the header")
    try:
        table = pacsv.read_csv(
            pa.py_buffer(text),
            read_options=pacsv.ReadOptions(column_names=_COLS, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(
                include_columns=_KEEP, column_types=dict.fromkeys(_KEEP, pa.float64())
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        _raise_bad_line(path, text)
        raise  # _raise_bad_line always raises; this keeps type checkers sure the function ends here
    cols = {k: table.column(k).to_numpy(zero_copy_only=False) for k in _KEEP}
    for k in _KEEP:
        if np.isnan(cols[k]).any():
            line = int(np.flatnonzero(np.isnan(cols[k]))[0]) + 2
            raise TraceFormatError(path, line, f"empty value in column {HEADER[_COLS.index(k)]!r}")
    t, cores, cap_mhz, cpu_pct, mem_cap, mem_use, d_r, d_w, n_rx, n_tx = (cols[k] for k in _KEEP)
    with np.errstate(divide="ignore", invalid="ignore"):
        mem_util = np.where((mem_cap > 0) & (mem_use <= mem_cap), mem_use / mem_cap, np.nan)
    values = np.column_stack(
        [cpu_pct / 100.0, mem_util, n_rx * BYTES_PER_KB, n_tx * BYTES_PER_KB, d_r * BYTES_PER_KB, d_w * BYTES_PER_KB]
    )
    return _VmSamples(
        times_s=t,
        values=values,
        cpu_capacity_mhz=_first_positive(cap_mhz),
        mem_capacity_bytes=_first_positive(mem_cap) * BYTES_PER_KB,
        cpu_cores=_first_positive(cores),
    )


def _first_positive(column: npt.NDArray[np.float64]) -> float:
    """First value > 0 (skips the all-zero placeholder rows some VMs start with), or NaN."""
    pos = np.flatnonzero(column > 0)
    return float(column[pos[0]]) if pos.size else float("nan")


def _raise_bad_line(path: Path, text: bytes) -> None:
    """Find and report the first line that does not hold 11 numbers (slow path, errors only)."""
    for i, line in enumerate(text.decode("utf-8", errors="replace").split("\n"), start=1):
        if i == 1 or not line.strip():
            continue
        fields = line.split(";")
        if len(fields) != len(HEADER):
            raise TraceFormatError(path, i, f"expected {len(HEADER)} fields, found {len(fields)}")
        for col, field in zip(HEADER, fields, strict=True):
            try:
                float(field)
            except ValueError:
                raise TraceFormatError(path, i, f"{col!r} is not a number: {field[:40]!r}") from None
    raise TraceFormatError(path, None, "unparseable CSV content")


def _cache_path(cache_dir: Path, folder: Path, files: list[tuple[int, Path]], step: float) -> Path:
    """Cache file name: a hash of the loader version, step, and every file's path, size and mtime."""
    stats = []
    for _, p in files:
        st = p.stat()
        stats.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    key = json.dumps([_CACHE_VERSION, step, str(folder.resolve()), stats]).encode()
    return Path(cache_dir) / f"bitbrains-{hashlib.sha256(key).hexdigest()[:24]}.npz"


def _write_cache(path: Path, ts: TraceSet) -> None:
    """Write the matrices atomically (temp file + rename) so a crash never leaves a half cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    arrays = {m: getattr(ts, m) for m in _METRICS}
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            ids=np.asarray(ts.instance_ids),
            cpu_capacity_mhz=ts.cpu_capacity_mhz,
            mem_capacity_bytes=ts.mem_capacity_bytes,
            cpu_cores=ts.cpu_cores,
            extra=np.asarray(json.dumps(ts.extra)),
            **arrays,
        )
    os.replace(tmp, path)


def _read_cache(path: Path, name: str, folder: Path, step: float) -> TraceSet | None:
    """Load a cached TraceSet, or None when the cache file is unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = tuple(str(x) for x in z["ids"])
            return TraceSet(
                name=name,
                instance_ids=ids,
                step_s=step,
                **{m: z[m] for m in _METRICS},
                cpu_capacity_mhz=z["cpu_capacity_mhz"],
                mem_capacity_bytes=z["mem_capacity_bytes"],
                cpu_cores=z["cpu_cores"],
                start_offsets_s=np.zeros(len(ids), dtype=np.float64),
                source=str(folder),
                extra=json.loads(str(z["extra"])),
            )
    except (OSError, ValueError, KeyError):
        return None
