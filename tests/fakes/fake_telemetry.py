"""Telemetry over a FleetSnapshot the test sets directly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from policies.fleet import FleetSnapshot


class FakeTelemetry:
    """Implements ``Telemetry``: returns ``snapshot`` (history cut to the requested length).

    Attributes:
        snapshot: The fleet view to hand out; tests replace it between ticks.
        requests: Every ``history_len`` asked for, to check the controller's settings reach telemetry.
    """

    def __init__(self, snapshot: FleetSnapshot, health: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.snapshot = snapshot
        self._health = dict(health or {})
        self.requests: list[int] = []

    def fleet(self, history_len: int) -> FleetSnapshot:
        self.requests.append(history_len)
        history = self.snapshot.instance_cpu_history[:, -history_len:]
        return dataclasses.replace(self.snapshot, instance_cpu_history=history)

    def health_metrics(self, instance_id: str) -> Mapping[str, float]:
        return self._health.get(instance_id, {})
