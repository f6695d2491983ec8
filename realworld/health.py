"""Where live host health readings come from: the inputs of failure prediction.

The twin draws host health from real distributions (``sim.failures``); a live fleet reads it from the
machines. Two sources, behind one small protocol so the telemetry port does not care which:

* :class:`EdacHealthSource` reads the Linux EDAC counters of *this* machine (corrected and
  uncorrected memory errors, ``/sys/devices/system/edac/mc``), the signal the ``health-evacuate``
  policy watches (``memory_errors``);
* :class:`HealthFileSource` reads a JSON document ``{host: {metric: value}}`` that an exporter
  (smartctl, IPMI, a node agent) rewrites atomically — and that a test or an operator can write to
  inject a risk signal.

A source that cannot be read returns the last good readings and logs why, because a control loop
must not stop on a half-written exporter file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

Readings = Mapping[str, Mapping[str, float]]


class HostHealthSource(Protocol):
    """Latest health readings per host (host id -> metric -> value)."""

    def readings(self) -> Readings:
        """Return the latest readings; hosts without readings are absent."""
        ...


class HealthFileSource:
    """Readings from a JSON file ``{"host-id": {"memory_errors": 3, ...}, ...}``.

    Args:
        path: The file; a missing file means no readings yet.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._last: dict[str, dict[str, float]] = {}
        self._complained: str | None = None

    def readings(self) -> Readings:
        """Parse the file; on a malformed one keep the last good readings and log the problem once."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return self._last
        except OSError as exc:
            self._complain(f"{self.path}: cannot read health readings: {exc}")
            return self._last
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            self._complain(f"{self.path}: not valid JSON: {exc}")
            return self._last
        try:
            self._last = parse_health_document(document, where=str(self.path))
            self._complained = None
        except ValueError as exc:
            self._complain(str(exc))
        return self._last

    def _complain(self, message: str) -> None:
        if message != self._complained:
            log.warning("%s (keeping the last good readings)", message)
            self._complained = message


def parse_health_document(document: object, *, where: str) -> dict[str, dict[str, float]]:
    """Validate ``{host: {metric: number}}``; raises ValueError naming the host and metric."""
    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected an object of hosts, got {type(document).__name__}")
    out: dict[str, dict[str, float]] = {}
    for host, metrics in document.items():
        if not isinstance(metrics, dict):
            raise ValueError(f"{where}: host {host!r}: expected an object of metrics")
        row: dict[str, float] = {}
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}: host {host!r} metric {metric!r}: {value!r} is not a finite number")
            row[str(metric)] = float(value)
        out[str(host)] = row
    return out


class EdacHealthSource:
    """Memory error counts of this machine from Linux EDAC, reported as ``host_id``'s readings.

    ``memory_errors`` is the number of corrected plus uncorrected errors counted since the previous
    reading (a rate per control interval, like the twin's), so a machine that logged errors years
    ago does not look sick forever.

    Args:
        host_id: The host these readings describe.
        root: EDAC sysfs folder (injectable for tests).
    """

    def __init__(self, host_id: str, root: Path = Path("/sys/devices/system/edac/mc")) -> None:
        self.host_id = host_id
        self.root = Path(root)
        self._previous: float | None = None

    def available(self) -> bool:
        """Whether this machine exposes EDAC memory controllers at all."""
        return any(self.root.glob("mc*/ce_count"))

    def readings(self) -> Readings:
        """Errors since the last call (0 on the first), or nothing when EDAC is absent."""
        total = 0.0
        found = False
        for counter in sorted(self.root.glob("mc*/[cu]e_count")):
            try:
                total += float(counter.read_text().strip())
                found = True
            except (OSError, ValueError):
                continue
        if not found:
            return {}
        delta = 0.0 if self._previous is None else max(0.0, total - self._previous)
        self._previous = total
        return {self.host_id: {"memory_errors": delta}}
