"""Ports: the small interfaces through which the core observes and changes a fleet.

Each port is a :class:`typing.Protocol`. The twin implements them over its SimPy world
(``sim.adapters``), the live controller over real agents, stores, HAProxy and processes
(``realworld``), and ``tests/fakes`` over plain dictionaries. Calls that take time return an
:class:`~policies.waiting.Operation` instead of blocking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from policies.fleet import FleetSnapshot
from policies.records import MigrationPlan, MirrorSnapshot, Move
from policies.waiting import Operation


class Clock(Protocol):
    """Current time in seconds: simulated in the twin, wall-clock (epoch) live."""

    def now(self) -> float:
        """Return the current time (s)."""
        ...


class Telemetry(Protocol):
    """Metrics history per instance and host, as gathered by the Resource Mirroring Agents."""

    def fleet(self, history_len: int) -> FleetSnapshot:
        """Return the current fleet view with the last ``history_len`` utilisation samples."""
        ...

    def health_metrics(self, instance_id: str) -> Mapping[str, float]:
        """Latest health readings of the host running ``instance_id`` (e.g. memory error counts)."""
        ...


class MirrorStore(Protocol):
    """The Mirror Stores of all IVNs, as seen by the controller."""

    def latest_snapshot(self, instance_id: str, ivn: str) -> MirrorSnapshot | None:
        """Latest complete snapshot of ``instance_id`` held in ``ivn``'s store, if any."""
        ...

    def set_snapshot_interval(self, instance_id: str, interval_s: float) -> None:
        """Ask the instance's RMA to snapshot every ``interval_s`` seconds from now on."""
        ...


class InstanceProvider(Protocol):
    """Creates and removes instances and knows the capacity of each IVN."""

    def has_capacity(self, ivn: str, instance_id: str) -> bool:
        """Return whether ``ivn`` can host a replacement of ``instance_id`` now."""
        ...

    def estimate_migration_s(self, instance_id: str, ivn: str) -> float:
        """A-priori estimate of how long moving ``instance_id`` into ``ivn`` takes (s)."""
        ...

    def create_from_snapshot(
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> Operation[str]:
        """Start a replacement of ``instance_id`` in ``ivn`` restored from ``snapshot``.

        With no snapshot the whole state is copied from the source. The operation's result is the
        replacement's id once it runs and has caught up with the source.
        """
        ...

    def live_migrate(self, moves: Sequence[Move]) -> Sequence[Operation[bool]]:
        """Start live migrations of instances to other hosts of their own IVN (one batch)."""
        ...

    def decommission(self, instance_id: str) -> Operation[None]:
        """Stop ``instance_id`` and free its resources."""
        ...


class LoadBalancer(Protocol):
    """Traffic control in front of an instance and its replacement."""

    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None:
        """Split ``instance_id``'s traffic over backends (backend id -> weight, summing to 1)."""
        ...

    def check_health(self, backend_id: str) -> Operation[bool]:
        """Start a health check of ``backend_id``; the result says whether it passed."""
        ...

    def redirect(self, instance_id: str, replacement_id: str) -> None:
        """Send all of ``instance_id``'s traffic to ``replacement_id`` for good."""
        ...

    def rollback(self, instance_id: str, replacement_id: str) -> None:
        """Return all traffic to ``instance_id`` and drop ``replacement_id`` from rotation."""
        ...


class Policy(Protocol):
    """A strategy that turns a fleet view into a plan. Decides only; never acts."""

    name: str

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Return the moves and snapshot changes wanted at this tick."""
        ...
