"""One resource sample of an instance and the bounded buffer the agent keeps them in."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """Resource use of one instance over the interval ending at ``timestamp``.

    Rates are averages over the interval since the previous sample, so the first sample of a sampler
    reports rates of 0 (there is nothing to difference against).

    Attributes:
        timestamp: End of the interval (epoch s).
        cpu_util: CPU time used over the interval / (interval x cores allotted), 0..1 (may briefly
            exceed 1 if the instance uses more cores than allotted).
        memory_bytes: Resident memory now (process tree: sum of RSS, or of PSS when readable; cgroup:
            ``memory.current``).
        net_rx_bps: Bytes/s received on the instance's network namespace (all its interfaces).
        net_tx_bps: Bytes/s sent on the instance's network namespace.
        disk_read_bps: Bytes/s read from storage by the instance.
        disk_write_bps: Bytes/s written to storage by the instance.
    """

    timestamp: float
    cpu_util: float
    memory_bytes: int
    net_rx_bps: float
    net_tx_bps: float
    disk_read_bps: float
    disk_write_bps: float

    def as_dict(self) -> dict[str, float]:
        """The sample as a JSON-ready mapping (field name -> value)."""
        return asdict(self)


class SampleRing:
    """Thread-safe bounded buffer of samples in time order; the oldest fall off when full.

    The sampler thread appends while HTTP handlers read, hence the lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self._samples: deque[ResourceSample] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Most samples kept."""
        return self._samples.maxlen or 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def append(self, sample: ResourceSample) -> None:
        """Add the newest sample (dropping the oldest when full)."""
        with self._lock:
            self._samples.append(sample)

    def latest(self) -> ResourceSample | None:
        """The newest sample, if any."""
        with self._lock:
            return self._samples[-1] if self._samples else None

    def since(self, timestamp: float) -> list[ResourceSample]:
        """Samples strictly after ``timestamp``, oldest first."""
        with self._lock:
            samples = list(self._samples)
        start = bisect.bisect_right([s.timestamp for s in samples], timestamp)
        return samples[start:]
