"""The unchanged migration workflow over the live LB and provider: Redis in IVN A moves to IVN B.

HAProxy (root namespace) fronts a real redis-server in IVN A's namespace and reaches the replacement in
IVN B over the veths; the provider restores it from a snapshot, catches it up by replication and
announces it to the LB; the redirect hook promotes the replica at the switch. A minimal wall-clock
driver runs the workflow generator (the lead's live controller owns the real one).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from policies.records import MigrationOutcome, MirrorSnapshot, RiskAssessment
from policies.workflow import MigrationPorts, WorkflowSettings, initiate_migration
from realworld.driver import WallClock, WallClockDriver
from realworld.haproxy import HAProxyLoadBalancer, free_tcp_port
from realworld.ivn import IvnNetworks
from realworld.process_provider import HostBudget, InstanceRecord, LocalProcessProvider
from realworld.redis_app import RedisCutover, RedisEndpoint
from tests.integration.realworld.test_process_provider import KEYS, redis_template, seed_source

SETTINGS = WorkflowSettings(risk_threshold=0.5, traffic_steps=(0.5, 1.0), dwell_s=0.2)


def drive_on_wall_clock(workflow: Generator[Any, Any, Any], timeout_s: float = 120.0) -> Any:
    """Run a workflow with the live driver the controller uses."""
    return WallClockDriver(poll_s=0.02).run_to_completion(workflow, timeout_s=timeout_s)


@dataclass
class SnapshotStore:
    snapshot: MirrorSnapshot

    def latest_snapshot(self, instance_id: str, ivn: str) -> MirrorSnapshot | None:
        return self.snapshot

    def set_snapshot_interval(self, instance_id: str, interval_s: float) -> None:
        return None


@dataclass
class Live:
    lb: HAProxyLoadBalancer
    provider: LocalProcessProvider
    snapshot: MirrorSnapshot
    front: tuple[str, int]
    announced: list[InstanceRecord]


def start_live(tmp_path: Path, haproxy: str, *, announce_wrong_port: bool) -> Iterator[Live]:
    announced: list[InstanceRecord] = []

    def endpoint_of(instance_id: str) -> tuple[str, int]:
        record = provider.record(instance_id)
        return record.address, record.port

    with (
        IvnNetworks(["A", "B"]) as networks,
        HAProxyLoadBalancer.start(
            tmp_path / "lb",
            haproxy_bin=haproxy,
            redirect_hook=RedisCutover(lambda backend: RedisEndpoint(*endpoint_of(backend))),
        ) as lb,
    ):

        def register(instance_id: str, record: InstanceRecord) -> None:
            announced.append(record)
            port = free_tcp_port("127.0.0.1") if announce_wrong_port else record.port
            lb.register_backend(instance_id, record.instance_id, record.address, port)

        capacity = {"A": {"a1": HostBudget(2.0, 2**30)}, "B": {"b1": HostBudget(2.0, 2**30)}}
        with LocalProcessProvider(networks, tmp_path / "work", capacity, on_replacement=register) as provider:
            template = redis_template(tmp_path / "snapshots", catch_up=True)
            snapshot = seed_source(provider, template, tmp_path / "snapshots")
            source = provider.record("r")
            front_port = free_tcp_port("127.0.0.1")
            lb.add_service(
                "r", "127.0.0.1", front_port, server_address=source.address, server_port=source.port, health="redis"
            )
            yield Live(lb, provider, snapshot, ("127.0.0.1", front_port), announced)


@pytest.fixture
def live(tmp_path: Path, haproxy_bin: str) -> Iterator[Live]:
    yield from start_live(tmp_path, haproxy_bin, announce_wrong_port=False)


@pytest.fixture
def live_broken(tmp_path: Path, haproxy_bin: str) -> Iterator[Live]:
    yield from start_live(tmp_path, haproxy_bin, announce_wrong_port=True)


def migrate(live: Live) -> Any:
    ports = MigrationPorts(WallClock(), live.provider, SnapshotStore(live.snapshot), live.lb)
    risk = RiskAssessment("r", 0.9, 1.2, {"memory_errors": 3.0})
    return drive_on_wall_clock(initiate_migration("r", "B", risk=risk, ports=ports, settings=SETTINGS))


def test_redis_moves_to_ivn_b_and_keeps_every_key(live: Live) -> None:
    source_pid = live.provider.record("r").pid
    result = migrate(live)
    assert result.outcome is MigrationOutcome.SUCCEEDED, result.reason
    assert result.replacement_id == "r@B#1"
    assert live.lb.serving("r") == {"r@B#1"}
    assert [record.instance_id for record in live.provider.inventory()] == ["r@B#1"]
    client = redis.Redis(*live.front, socket_timeout=5)
    client.set("after-migration", "yes")  # the promoted replica accepts writes through HAProxy
    assert client.get("before:1") == b"1" and client.get(f"after:{KEYS - 1}") is not None
    assert client.get("after-migration") == b"yes"
    assert client.info("replication")["role"] == "master"
    with pytest.raises(ProcessLookupError):  # the source was decommissioned
        os.kill(source_pid, 0)


def test_unhealthy_replacement_is_rolled_back_and_the_source_keeps_serving(live_broken: Live) -> None:
    result = migrate(live_broken)
    assert result.outcome is MigrationOutcome.ROLLED_BACK
    assert "health check failed" in result.reason
    assert live_broken.lb.serving("r") == {"r"}
    assert [record.instance_id for record in live_broken.provider.inventory()] == ["r"]
    client = redis.Redis(*live_broken.front, socket_timeout=5)
    client.set("after-rollback", "yes")
    assert client.get("after-rollback") == b"yes" and client.get("before:2") == b"2"


def test_writes_through_haproxy_during_the_migration_are_never_lost(live: Live) -> None:
    """A bounded writer keeps writing through HAProxy (retrying on errors) while the workflow runs."""
    acknowledged: list[str] = []
    acknowledged_at: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        client = redis.Redis(*live.front, socket_timeout=2)
        for i in range(20_000):  # bounded in count; stopped as soon as the workflow is done
            if stop.is_set():
                return
            try:
                client.set(f"load:{i}", i)
                acknowledged.append(f"load:{i}")
                acknowledged_at.append(time.monotonic())
            except redis.RedisError as exc:
                failures.append(type(exc).__name__)
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = migrate(live)
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join(timeout=30)
    assert result.outcome is MigrationOutcome.SUCCEEDED, result.reason
    client = redis.Redis(*live.front, socket_timeout=5)
    values = client.mget(acknowledged) if acknowledged else []
    missing = [key for key, value in zip(acknowledged, values, strict=True) if value is None]
    gap = max((b - a for a, b in itertools.pairwise(acknowledged_at)), default=0.0)
    print(f"acknowledged {len(acknowledged)} writes, {len(failures)} failed attempts {sorted(set(failures))}, ")
    print(f"longest gap between acknowledged writes {gap:.3f} s")
    assert acknowledged and missing == []
