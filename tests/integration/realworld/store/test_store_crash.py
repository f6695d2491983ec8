"""SIGKILL the store during uploads: no committed snapshot is lost, none is corrupt, the in-flight one
is absent or complete (issue 6, acceptance 2)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest

from realworld.store.client import MirrorStoreClient, StoreClientError
from realworld.store.fs_backend import TEMP_PREFIX

from .conftest import TOKEN_A, read_tree, start_store, write_tenants

ROUNDS = 4


def _state(root: Path, rng: np.random.Generator, files: int, megabytes_each: float) -> dict[str, bytes]:
    root.mkdir(parents=True)
    for index in range(files):
        (root / f"part-{index:02d}.bin").write_bytes(rng.bytes(int(megabytes_each * 1_000_000)))
    return read_tree(root)


def _upload(url: str, source: Path, timestamp: float, outcome: list[object]) -> None:
    try:
        outcome.append(
            MirrorStoreClient(url, TOKEN_A, timeout_s=20).upload_directory("crashy", source, timestamp=timestamp)
        )
    except StoreClientError as exc:
        outcome.append(exc)


@pytest.mark.slow
def test_sigkill_during_uploads_loses_no_committed_snapshot(tmp_path: Path) -> None:
    tenants = write_tenants(tmp_path / "tenants.toml")
    root = tmp_path / "root"
    rng = np.random.default_rng(6)
    pick = random.Random(6)
    expected: dict[float, dict[str, bytes]] = {}
    committed: set[float] = set()
    kills: list[str] = []
    for round_index in range(ROUNDS):
        store = start_store(root, tenants, tmp_path)
        try:
            client = MirrorStoreClient(store.url, TOKEN_A, timeout_s=20)
            # One snapshot committed for sure before the kill...
            stamp = round_index * 10.0
            expected[stamp] = _state(tmp_path / f"done-{round_index}", rng, files=2, megabytes_each=1)
            client.upload_directory("crashy", tmp_path / f"done-{round_index}", timestamp=stamp)
            committed.add(stamp)
            # ...and a large one in flight when the store is killed at a random point.
            in_flight = stamp + 5
            # Round 0's upload is large (128 MB, ~0.5 s at this store's ingest speed) and is killed within
            # 0.1 s, so at least one kill surely lands mid-upload however fast or idle the machine is.
            size_mb = 16 if round_index == 0 else 6
            expected[in_flight] = _state(tmp_path / f"flight-{round_index}", rng, files=8 if round_index == 0 else 6,
                                         megabytes_each=size_mb)
            outcome: list[object] = []

            worker = threading.Thread(
                target=_upload, args=(store.url, tmp_path / f"flight-{round_index}", in_flight, outcome)
            )
            worker.start()
            # Random kill points; the first round kills early so at least one upload is surely in flight.
            threading.Event().wait(pick.uniform(0.02, 0.1) if round_index == 0 else pick.uniform(0.05, 1.5))
            store.kill()
            worker.join(60)
            assert not worker.is_alive()
            kills.append("after commit" if outcome and not isinstance(outcome[0], Exception) else "mid-upload")
            if outcome and not isinstance(outcome[0], Exception):
                committed.add(in_flight)  # it beat the kill: it must survive
        finally:
            store.kill()

        restarted = start_store(root, tenants, tmp_path)
        try:
            assert not any(p.name.startswith(TEMP_PREFIX) for p in root.rglob("*"))  # crash leftovers cleared
            with MirrorStoreClient(restarted.url, TOKEN_A) as client:
                listed = client.list_snapshots("crashy")
                stamps = {s.timestamp for s in listed}
                assert committed <= stamps, f"lost committed snapshots {sorted(committed - stamps)}"
                for snapshot in listed:
                    target = tmp_path / f"restore-{round_index}-{snapshot.snapshot_id}"
                    client.restore(snapshot.snapshot_id, target)
                    assert read_tree(target) == expected[snapshot.timestamp], f"snapshot at {snapshot.timestamp}"
                committed |= stamps  # a listed in-flight snapshot was complete; it must stay
        finally:
            restarted.stop()
    # The random kill points must have hit at least one upload in flight, or the test proved nothing.
    assert "mid-upload" in kills, kills
