"""Concurrent uploads of overlapping state, and GC over HTTP once leases have run out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from realworld.store.client import MirrorStoreClient, SnapshotInfo, StoreClientError

from .conftest import TOKEN_A, StoreProcess, read_tree, start_store, write_tenants


def test_concurrent_uploads_of_shared_chunks_all_restore(store: StoreProcess, tmp_path: Path) -> None:
    shared = np.random.default_rng(21).bytes(3_000_000)
    sources = []
    for index in range(4):
        source = tmp_path / f"src{index}"
        source.mkdir()
        (source / "shared.bin").write_bytes(shared)
        (source / "own.bin").write_bytes(np.random.default_rng(100 + index).bytes(500_000))
        sources.append(source)
    results: dict[int, SnapshotInfo | StoreClientError] = {}

    def upload(index: int) -> None:
        try:
            with MirrorStoreClient(store.url, TOKEN_A) as client:
                results[index] = client.upload_directory(f"conc-{index}", sources[index], timestamp=float(index))
        except StoreClientError as exc:
            results[index] = exc

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4
    with MirrorStoreClient(store.url, TOKEN_A) as client:
        for index, info in results.items():
            assert isinstance(info, SnapshotInfo), info
            target = tmp_path / f"out{index}"
            client.restore(info.snapshot_id, target)
            assert read_tree(target) == read_tree(sources[index])


def test_gc_frees_deleted_snapshots_chunks_after_the_lease(tmp_path: Path) -> None:
    tenants = write_tenants(tmp_path / "tenants.toml")
    store = start_store(tmp_path / "root", tenants, tmp_path, "--lease-s", "0.5", "--gc-interval-s", "0")
    try:
        keep, drop = tmp_path / "keep", tmp_path / "drop"
        keep.mkdir()
        drop.mkdir()
        (keep / "k").write_bytes(np.random.default_rng(1).bytes(600_000))
        (drop / "d").write_bytes(np.random.default_rng(2).bytes(600_000))
        with MirrorStoreClient(store.url, TOKEN_A) as client:
            kept = client.upload_directory("gc", keep, timestamp=1.0)
            dropped = client.upload_directory("gc", drop, timestamp=2.0)
            client.delete(dropped.snapshot_id)
            time.sleep(0.6)
            result = client.gc()
            assert result["deleted_chunks"] >= 1 and result["kept_snapshots"] == 1
            assert [s.snapshot_id for s in client.list_snapshots("gc")] == [kept.snapshot_id]
            client.restore(kept.snapshot_id, tmp_path / "out")
            # A new upload of the dropped content re-sends it: the store really freed it.
            again = client.upload_directory("gc", drop, timestamp=3.0)
            assert again.sent_bytes >= 600_000
        assert read_tree(tmp_path / "out") == read_tree(keep)
    finally:
        store.stop()


def test_client_halves_batches_for_a_store_with_a_small_body_limit(tmp_path: Path) -> None:
    tenants = write_tenants(tmp_path / "tenants.toml")
    store = start_store(tmp_path / "root", tenants, tmp_path, "--max-body-mb", "1")
    try:
        source = tmp_path / "src"
        source.mkdir()
        (source / "big").write_bytes(np.random.default_rng(3).bytes(6_000_000))
        with MirrorStoreClient(store.url, TOKEN_A) as client:
            info = client.upload_directory("small-bodies", source, timestamp=1.0)
            client.restore(info.snapshot_id, tmp_path / "out")
        assert read_tree(tmp_path / "out") == read_tree(source)
    finally:
        store.stop()
