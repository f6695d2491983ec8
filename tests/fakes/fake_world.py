"""Every port's fake wired to one clock, one event log and one workflow runner.

Tests of the workflow and the controller need all ports at once; building them here keeps each test
to the few knobs it is about (a failing restore, an unhealthy check) and the whole log to assert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.records import MirrorSnapshot
from policies.workflow import MigrationPorts
from tests.fakes.event_log import EventLog
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_instance_provider import FakeInstanceProvider
from tests.fakes.fake_load_balancer import FakeLoadBalancer
from tests.fakes.fake_mirror_store import FakeMirrorStore
from tests.fakes.workflow_runner import WorkflowRunner


@dataclass
class FakeWorld:
    clock: FakeClock
    log: EventLog
    provider: FakeInstanceProvider
    store: FakeMirrorStore
    lb: FakeLoadBalancer
    runner: WorkflowRunner

    @property
    def ports(self) -> MigrationPorts:
        return MigrationPorts(clock=self.clock, provider=self.provider, store=self.store, lb=self.lb)


def make_world(
    *,
    running: Sequence[str] = (),
    capacity: dict[str, bool] | None = None,
    snapshots: dict[tuple[str, str], MirrorSnapshot] | None = None,
    health: Mapping[str, Sequence[bool]] | None = None,
    create_error: Exception | None = None,
    health_error: Exception | None = None,
) -> FakeWorld:
    clock = FakeClock()
    log = EventLog(clock)
    provider = FakeInstanceProvider(clock, log, running=running, capacity=capacity, create_error=create_error)
    store = FakeMirrorStore(log, snapshots)
    lb = FakeLoadBalancer(clock, log, health=health, health_error=health_error)
    return FakeWorld(clock, log, provider, store, lb, WorkflowRunner(clock, log))
