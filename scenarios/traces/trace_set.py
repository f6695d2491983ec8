"""The one tidy representation every trace loader returns: instances x time on a regular grid.

Demand in the twin is replayed from real traces. Formats differ (one file per VM, wide CSVs, long
irregular tables); after loading, every trace is a :class:`TraceSet`: dense ``float32`` matrices of
shape (instances, steps) on a regular grid of ``step_s`` seconds, one matrix per metric the trace
has. Metrics the trace lacks are ``None`` so the model can tell "not measured" from "zero".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

Matrix = npt.NDArray[np.float32]

#: Metric names, their units and meaning, in the order ``to_frame`` emits them.
METRICS: dict[str, str] = {
    "cpu_util": "CPU utilisation as a fraction (0-1, may slightly exceed 1 where the trace does)",
    "mem_util": "memory in use as a fraction of provisioned memory (0-1)",
    "net_rx_bps": "network received, bytes per second",
    "net_tx_bps": "network transmitted, bytes per second",
    "disk_read_bps": "disk read, bytes per second",
    "disk_write_bps": "disk written, bytes per second",
}


@dataclass(frozen=True)
class TraceSet:
    """Per-instance resource usage on a regular time grid.

    Attributes:
        name: Trace family and subset, e.g. ``planetlab/20110303``.
        instance_ids: One id per row (file name, VM id, machine id, column name).
        step_s: Grid spacing in seconds.
        cpu_util: CPU utilisation fraction, shape (instances, steps). Always present.
        mem_util: Memory utilisation fraction, or None.
        net_rx_bps: Network receive rate, or None.
        net_tx_bps: Network transmit rate, or None.
        disk_read_bps: Disk read rate, or None.
        disk_write_bps: Disk write rate, or None.
        cpu_capacity_mhz: Provisioned CPU per instance where the trace states it, or None.
        mem_capacity_bytes: Provisioned memory per instance where the trace states it, or None.
        cpu_cores: Provisioned vCPUs per instance where the trace states it, or None.
        start_offsets_s: Offset of each row's step 0 from the trace's own epoch (0 when aligned).
        source: Where the files came from (for reports and provenance).
    """

    name: str
    instance_ids: tuple[str, ...]
    step_s: float
    cpu_util: Matrix
    mem_util: Matrix | None = None
    net_rx_bps: Matrix | None = None
    net_tx_bps: Matrix | None = None
    disk_read_bps: Matrix | None = None
    disk_write_bps: Matrix | None = None
    cpu_capacity_mhz: npt.NDArray[np.float64] | None = None
    mem_capacity_bytes: npt.NDArray[np.float64] | None = None
    cpu_cores: npt.NDArray[np.float64] | None = None
    start_offsets_s: npt.NDArray[np.float64] | None = None
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check that every matrix has the same shape and one row per id."""
        shape = self.cpu_util.shape
        if len(shape) != 2 or shape[0] != len(self.instance_ids):
            raise ValueError(f"{self.name}: cpu_util shape {shape} does not match {len(self.instance_ids)} ids")
        for metric in METRICS:
            m = getattr(self, metric)
            if m is not None and m.shape != shape:
                raise ValueError(f"{self.name}: {metric} shape {m.shape} differs from cpu_util {shape}")

    @property
    def n_instances(self) -> int:
        """Number of series (rows)."""
        return self.cpu_util.shape[0]

    @property
    def n_steps(self) -> int:
        """Number of grid points (columns)."""
        return self.cpu_util.shape[1]

    @property
    def duration_s(self) -> float:
        """Time covered by the grid."""
        return self.n_steps * self.step_s

    def metrics(self) -> list[str]:
        """Names of the metrics this trace actually has."""
        return [m for m in METRICS if getattr(self, m) is not None]

    def select(self, rows: Sequence[int] | npt.NDArray[np.int64]) -> TraceSet:
        """Return the subset (or resampling, with repeats) of rows ``rows``, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        changes: dict[str, object] = {"instance_ids": tuple(self.instance_ids[i] for i in idx)}
        for metric in METRICS:
            m = getattr(self, metric)
            if m is not None:
                changes[metric] = m[idx]
        for attr in ("cpu_capacity_mhz", "mem_capacity_bytes", "cpu_cores", "start_offsets_s"):
            v = getattr(self, attr)
            if v is not None:
                changes[attr] = v[idx]
        return replace(self, **changes)  # type: ignore[arg-type]

    def truncate(self, n_steps: int) -> TraceSet:
        """Return the first ``n_steps`` grid points of every metric."""
        changes = {m: getattr(self, m)[:, :n_steps] for m in self.metrics()}
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_frame(self) -> pd.DataFrame:
        """Long (tidy) frame: one row per (instance, time) with a column per available metric."""
        n, t = self.cpu_util.shape
        data: dict[str, object] = {
            "instance_id": np.repeat(np.asarray(self.instance_ids, dtype=object), t),
            "time_s": np.tile(np.arange(t, dtype=np.float64) * self.step_s, n),
        }
        for metric in self.metrics():
            data[metric] = getattr(self, metric).reshape(-1)
        return pd.DataFrame(data)
