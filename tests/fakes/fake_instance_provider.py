"""An instance provider over a set of running instance ids, with scripted durations and failures."""

from __future__ import annotations

from collections.abc import Sequence

from policies.records import MirrorSnapshot, Move
from policies.waiting import CompletedOperation, Operation
from tests.fakes.event_log import EventLog
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_operation import FakeOperation


class FakeInstanceProvider:
    """Implements ``InstanceProvider``.

    Replacements are named ``"<instance>@<ivn>"``. A replacement counts as running from the call
    that creates it, unless creation is scripted to fail, in which case nothing is left running.

    Attributes:
        running: Ids of running instances.
        capacity: Per-IVN answer of ``has_capacity`` (default true).
        create_error: When set, every ``create_from_snapshot`` operation fails with it.
        restores: ``(instance_id, snapshot, ivn, host)`` of every creation requested.
        decommissioned: Ids decommissioned, in order.
        live_batches: Every batch handed to ``live_migrate``.
    """

    def __init__(
        self,
        clock: FakeClock,
        log: EventLog,
        *,
        running: Sequence[str] = (),
        capacity: dict[str, bool] | None = None,
        estimate_s: float = 60.0,
        create_s: float = 20.0,
        decommission_s: float = 5.0,
        create_error: Exception | None = None,
    ) -> None:
        self._clock = clock
        self._log = log
        self.running = set(running)
        self.capacity = dict(capacity or {})
        self.estimate_s = estimate_s
        self.create_s = create_s
        self.decommission_s = decommission_s
        self.create_error = create_error
        self.restores: list[tuple[str, MirrorSnapshot | None, str, str | None]] = []
        self.decommissioned: list[str] = []
        self.live_batches: list[list[Move]] = []

    def has_capacity(self, ivn: str, instance_id: str) -> bool:
        self._log.add(f"provider.has_capacity {ivn} {instance_id}")
        return self.capacity.get(ivn, True)

    def estimate_migration_s(self, instance_id: str, ivn: str) -> float:
        self._log.add(f"provider.estimate_migration_s {instance_id} {ivn}")
        return self.estimate_s

    def create_from_snapshot(
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> Operation[str]:
        replacement = f"{instance_id}@{ivn}"
        self._log.add(f"provider.create_from_snapshot {instance_id} {ivn}")
        self.restores.append((instance_id, snapshot, ivn, host))
        if self.create_error is None:
            self.running.add(replacement)
        return FakeOperation(self._clock, self.create_s, replacement, label="create", error=self.create_error)

    def live_migrate(self, moves: Sequence[Move]) -> Sequence[Operation[bool]]:
        self._log.add(f"provider.live_migrate {len(moves)}")
        self.live_batches.append(list(moves))
        return [CompletedOperation(True) for _ in moves]

    def decommission(self, instance_id: str) -> Operation[None]:
        self._log.add(f"provider.decommission {instance_id}")
        self.running.discard(instance_id)
        self.decommissioned.append(instance_id)
        return FakeOperation(self._clock, self.decommission_s, None, label=f"decommission {instance_id}")
