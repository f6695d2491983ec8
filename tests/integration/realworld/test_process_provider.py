"""LocalProcessProvider with real redis-server processes inside IVN namespaces (loopback when not root)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from policies.records import MirrorSnapshot, Move
from realworld.ivn import IvnNetworks
from realworld.operations import FutureOperation
from realworld.process_provider import (
    AppTemplate,
    HostBudget,
    InstanceRecord,
    LocalProcessProvider,
    ProviderError,
    RedisPingProbe,
)
from realworld.redis_app import RedisEndpoint
from realworld.redis_app import catch_up as redis_catch_up
from tests.live_processes import require_binary

REDIS_ARGV = (
    "{redis}",
    "--port",
    "{port}",
    "--bind",
    "{address}",
    "--dir",
    "{data_dir}",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",  # it listens only on our namespace's veth address; clients come from other IVNs
    "no",
    "--repl-diskless-sync-delay",  # Redis 7 waits 5 s for more replicas before a full sync; we have one
    "0",
)
KEYS = 50


def copy_snapshot_dir(snapshot_root: Path) -> object:
    """A restore function for tests: the 'snapshot' is a directory named after the snapshot's timestamp."""

    def restore(snapshot: MirrorSnapshot, data_dir: Path) -> None:
        shutil.copytree(snapshot_root / f"{snapshot.timestamp:.0f}", data_dir, dirs_exist_ok=True)

    return restore


def redis_template(snapshot_root: Path, *, catch_up: bool, restore: object = None) -> AppTemplate:
    binary = require_binary("redis-server")
    argv = [part.replace("{redis}", binary) for part in REDIS_ARGV]

    def follow(source: InstanceRecord, replacement: InstanceRecord) -> None:
        redis_catch_up(RedisEndpoint(source.address, source.port), RedisEndpoint(replacement.address, replacement.port),
                 timeout_s=30)

    return AppTemplate(
        "redis",
        argv,
        probe=RedisPingProbe(),
        restore=restore or copy_snapshot_dir(snapshot_root),  # type: ignore[arg-type]
        catch_up=follow if catch_up else None,
        cpu_cores=1.0,
        memory_bytes=64 * 2**20,
        stop_grace_s=3.0,
    )


def wait(operation: FutureOperation[object], timeout_s: float = 60.0) -> object:
    deadline = time.monotonic() + timeout_s
    while not operation.done():
        assert time.monotonic() < deadline, f"{operation.label} did not finish"
        time.sleep(0.02)
    return operation.result()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def networks() -> Iterator[IvnNetworks]:
    with IvnNetworks(["A", "B"]) as ivns:  # namespaces as root, loopback addresses otherwise
        yield ivns


@pytest.fixture
def provider(tmp_path: Path, networks: IvnNetworks) -> Iterator[tuple[LocalProcessProvider, list[InstanceRecord]]]:
    announced: list[InstanceRecord] = []
    capacity = {
        "A": {"a1": HostBudget(2.0, 2**30), "a2": HostBudget(2.0, 2**30)},
        "B": {"b1": HostBudget(1.0, 2**30)},
    }
    with LocalProcessProvider(
        networks, tmp_path / "work", capacity, on_replacement=lambda _src, record: announced.append(record)
    ) as live:
        yield live, announced


def seed_source(provider: LocalProcessProvider, template: AppTemplate, snapshot_root: Path) -> MirrorSnapshot:
    """Launch 'r' in A with KEYS keys, snapshot it (SAVE + copy of dump.rdb), then write KEYS more."""
    record = provider.launch("r", template, "A")
    client = redis.Redis(record.address, record.port, socket_timeout=5)
    for i in range(KEYS):
        client.set(f"before:{i}", i)
    client.save()
    (snapshot_root / "1000").mkdir(parents=True)
    shutil.copy(record.data_dir / "dump.rdb", snapshot_root / "1000" / "dump.rdb")
    for i in range(KEYS):
        client.set(f"after:{i}", i)
    size = (snapshot_root / "1000" / "dump.rdb").stat().st_size
    return MirrorSnapshot("r", 1000.0, size, ("redis-server",), ("dump.rdb",), "B")


def test_replacement_restored_from_snapshot_serves_the_snapshot_state(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, announced = provider
    template = redis_template(tmp_path / "snapshots", catch_up=False)
    snapshot = seed_source(live, template, tmp_path / "snapshots")
    source = live.record("r")
    assert live.has_capacity("B", "r")
    replacement_id = wait(live.create_from_snapshot("r", snapshot, "B", None))
    assert replacement_id == "r@B#1"
    replacement = live.record("r@B#1")
    assert replacement.ivn == "B" and replacement.host == "b1" and replacement.state == "running"
    assert replacement.address == live.networks.addresses("B").instance_address
    assert [record.instance_id for record in announced] == ["r@B#1"]
    client = redis.Redis(replacement.address, replacement.port, socket_timeout=5)
    assert client.get("before:7") == b"7"
    assert client.get("after:7") is None  # written after the snapshot; no catch-up in this template
    assert not live.has_capacity("B", "r")  # b1 (1 core) is taken by the replacement

    wait(live.decommission("r@B#1"))
    wait(live.decommission("r"))
    assert not pid_alive(replacement.pid) and not pid_alive(source.pid)
    assert not replacement.data_dir.exists() and not source.data_dir.exists()
    assert live.inventory() == []
    assert live.has_capacity("B", "r")


def test_catch_up_brings_the_replacement_level_with_the_source(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, _ = provider
    template = redis_template(tmp_path / "snapshots", catch_up=True)
    snapshot = seed_source(live, template, tmp_path / "snapshots")
    replacement_id = wait(live.create_from_snapshot("r", snapshot, "B", "b1"))
    replacement = live.record(str(replacement_id))
    client = redis.Redis(replacement.address, replacement.port, socket_timeout=5)
    assert client.get("before:3") == b"3" and client.get(f"after:{KEYS - 1}") == str(KEYS - 1).encode()


def test_failed_restore_leaves_nothing_running_and_frees_the_slot(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, announced = provider

    def broken_restore(snapshot: MirrorSnapshot, data_dir: Path) -> None:
        raise OSError("chunk 3f2a missing")

    template = redis_template(tmp_path / "snapshots", catch_up=False, restore=broken_restore)
    live.launch("r", template, "A")
    operation = live.create_from_snapshot("r", MirrorSnapshot("r", 1.0, 10), "B", None)
    with pytest.raises(ProviderError, match=r"restoring 'r@B#\d+' from snapshot at 1.0: chunk 3f2a missing"):
        wait(operation)
    assert [record.instance_id for record in live.inventory()] == ["r"]
    assert announced == []
    assert live.has_capacity("B", "r")


def test_no_capacity_and_unknown_instances_fail_the_operation(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, _ = provider
    template = redis_template(tmp_path / "snapshots", catch_up=False)
    live.launch("r", template, "A")
    with pytest.raises(ProviderError, match=r"no capacity .* host 'b9' of IVN 'B'"):
        wait(live.create_from_snapshot("r", None, "B", "b9"))
    with pytest.raises(ProviderError, match="unknown instance 'ghost'"):
        wait(live.create_from_snapshot("ghost", None, "B", None))
    with pytest.raises(ProviderError, match="decommission: unknown instance 'ghost'"):
        wait(live.decommission("ghost"))
    assert not live.has_capacity("Z", "r")


def test_live_migrate_only_re_accounts_the_slot(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, _ = provider
    template = redis_template(tmp_path / "snapshots", catch_up=False)
    before = live.launch("r", template, "A", host="a1")
    same_ivn, other_ivn = live.live_migrate([Move("r", "A", "a2"), Move("r", "B", "b1")])
    assert wait(same_ivn) is True and wait(other_ivn) is False
    after = live.record("r")
    assert after.host == "a2" and after.pid == before.pid and after.port == before.port


def test_estimate_grows_with_the_state_size(
    tmp_path: Path, provider: tuple[LocalProcessProvider, list[InstanceRecord]]
) -> None:
    live, _ = provider
    template = redis_template(tmp_path / "snapshots", catch_up=False)
    record = live.launch("r", template, "A")
    empty = live.estimate_migration_s("r", "B")
    (record.data_dir / "blob").write_bytes(b"x" * 4_000_000)
    assert live.estimate_migration_s("r", "B") > empty >= live.start_to_healthy_s


def test_bad_templates_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"argv part '\{prot\}' has a bad placeholder"):
        AppTemplate("x", ["server", "{prot}"])
    with pytest.raises(ValueError, match="cpu_cores"):
        AppTemplate("x", ["server"], cpu_cores=0)


def test_the_loopback_fallback_runs_the_same_instances(tmp_path: Path) -> None:
    capacity = {"A": {"a1": HostBudget(2.0, 2**30)}, "B": {"b1": HostBudget(2.0, 2**30)}}
    with (
        IvnNetworks(["A", "B"], mode="loopback") as networks,
        LocalProcessProvider(networks, tmp_path / "work", capacity) as live,
    ):
        template = redis_template(tmp_path / "snapshots", catch_up=True)
        snapshot = seed_source(live, template, tmp_path / "snapshots")
        replacement = live.record(str(wait(live.create_from_snapshot("r", snapshot, "B", None))))
        assert (live.record("r").address, replacement.address) == ("127.0.1.1", "127.0.2.1")
        client = redis.Redis(replacement.address, replacement.port, socket_timeout=5)
        assert client.get("before:0") == b"0" and client.get("after:0") == b"0"
        wait(live.decommission(replacement.instance_id))
        assert not pid_alive(replacement.pid)


def test_live_migrate_re_pins_every_thread_onto_the_target_slot_cpus(tmp_path: Path, networks: IvnNetworks) -> None:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs two usable CPUs")
    first, second = (usable[0],), (usable[1],)
    capacity = {"A": {"a1": HostBudget(1.0, 2**30, cpus=first), "a2": HostBudget(1.0, 2**30, cpus=second)}}
    with LocalProcessProvider(networks, tmp_path / "work", capacity) as live:
        record = live.launch("r", redis_template(tmp_path / "snapshots", catch_up=False), "A", host="a1")
        threads = [int(task) for task in os.listdir(f"/proc/{record.pid}/task")]
        assert len(threads) > 1  # redis-server has background threads; all of them must move
        assert {frozenset(os.sched_getaffinity(task)) for task in threads} == {frozenset(first)}
        (move,) = live.live_migrate([Move("r", "A", "a2")])
        assert wait(move) is True
        assert {frozenset(os.sched_getaffinity(task)) for task in threads} == {frozenset(second)}
        assert live.record("r").pid == record.pid and live.record("r").host == "a2"
    with pytest.raises(ValueError, match=r"capacity\['A'\]\['a9'\].cpus: \[4096\] not usable"):
        LocalProcessProvider(networks, tmp_path / "w2", {"A": {"a9": HostBudget(1.0, 1, cpus=(4096,))}})
