"""A Mirror Store over a dictionary of snapshots."""

from __future__ import annotations

from policies.records import MirrorSnapshot
from tests.fakes.event_log import EventLog


class FakeMirrorStore:
    """Implements ``MirrorStore``.

    Attributes:
        snapshots: ``(instance_id, ivn) -> MirrorSnapshot`` the store holds.
        intervals: Snapshot intervals set through the port, by instance.
    """

    def __init__(self, log: EventLog, snapshots: dict[tuple[str, str], MirrorSnapshot] | None = None) -> None:
        self._log = log
        self.snapshots = dict(snapshots or {})
        self.intervals: dict[str, float] = {}

    def latest_snapshot(self, instance_id: str, ivn: str) -> MirrorSnapshot | None:
        self._log.add(f"store.latest_snapshot {instance_id} {ivn}")
        return self.snapshots.get((instance_id, ivn))

    def set_snapshot_interval(self, instance_id: str, interval_s: float) -> None:
        self._log.add(f"store.set_snapshot_interval {instance_id} {interval_s:g}")
        self.intervals[instance_id] = interval_s
