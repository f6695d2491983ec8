"""Retention by count and by age, changeable at run time; the newest snapshot always stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from realworld.store.fs_backend import FileSystemBackend
from realworld.store.service import MirrorStoreService, StoreError

from .test_gc_law import TENANT, Clock, _upload


def _commit(service: MirrorStoreService, timestamp: float, retention: dict[str, object] | None = None) -> str:
    body: dict[str, object] = {"timestamp": timestamp, "files": _upload(service, {"f": b"state %f" % timestamp})}
    if retention is not None:
        body["retention"] = retention
    return service.commit(TENANT, "inst", body).snapshot_id


def test_max_age_expires_old_snapshots_but_keeps_the_newest(tmp_path: Path) -> None:
    clock = Clock()
    service = MirrorStoreService(FileSystemBackend(tmp_path), clock=clock)
    old = _commit(service, clock.now - 500)
    middle = _commit(service, clock.now - 100)
    newest = _commit(service, clock.now - 50, retention={"max_age_s": 200})
    assert [m.snapshot_id for m in service.list_snapshots(TENANT, "inst")] == [newest, middle]
    assert old not in {m.snapshot_id for m in service.list_snapshots(TENANT, "inst")}
    clock.now += 10_000  # everything is old now, but the newest is the only mirror left: kept
    assert service.apply_retention(TENANT, "inst") == [middle]
    assert [m.snapshot_id for m in service.list_snapshots(TENANT, "inst")] == [newest]


def test_retention_changes_at_run_time_and_is_validated(tmp_path: Path) -> None:
    service = MirrorStoreService(FileSystemBackend(tmp_path), clock=Clock())
    ids = [_commit(service, float(t)) for t in range(5)]
    assert len(service.list_snapshots(TENANT, "inst")) == 5  # no retention yet: keep all
    service.set_retention(TENANT, "inst", {"keep_last": 2})
    assert [m.snapshot_id for m in service.list_snapshots(TENANT, "inst")] == [ids[4], ids[3]]
    with pytest.raises(StoreError) as refused:
        service.set_retention(TENANT, "inst", {"keep_last": 0})
    assert refused.value.status == 422 and refused.value.field == "keep_last"
    with pytest.raises(StoreError) as refused:
        service.set_retention(TENANT, "inst", {"keep": 3})
    assert refused.value.status == 422
