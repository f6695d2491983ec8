"""The Mirror Store as a real process: round trip, dedup, corruption detection, tenancy, bad requests."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from realworld.store.chunking import chunk_hash, compressor
from realworld.store.client import MirrorStoreClient, Retention, StoreClientError
from realworld.store.frames import encode_frame

from .conftest import TOKEN_A, TOKEN_B, StoreProcess, read_tree, tree_state


def _make_state(root: Path, seed: int, megabytes: float = 3.0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "data" / "nested").mkdir(parents=True)
    (root / "data" / "dump.rdb").write_bytes(rng.bytes(int(megabytes * 1_000_000)))
    (root / "data" / "nested" / "aof.log").write_bytes(b"SET k v\n" * 20_000)
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to(root / "empty")  # not a regular file: skipped
    os.chmod(root / "data" / "dump.rdb", 0o640)
    return root


def test_upload_list_latest_restore_round_trip_and_dedup(store: StoreProcess, tmp_path: Path) -> None:
    source = _make_state(tmp_path / "src", seed=1)
    with MirrorStoreClient(store.url, TOKEN_A) as client:
        first = client.upload_directory("redis-1", source, timestamp=100.0, process_list=["redis-server"])
        assert first.file_count == 3 and first.logical_bytes == 3_000_000 + 160_000
        assert first.file_list == ("data/dump.rdb", "data/nested/aof.log", "empty")
        assert first.sent_bytes > 3_000_000  # random data does not compress
        second = MirrorStoreClient(store.url, TOKEN_A).upload_directory("redis-1", source, timestamp=200.0)
        assert second.sent_bytes == 0  # a fresh client, no files cache: the store's dedup alone
        listed = client.list_snapshots("redis-1")
        assert [s.snapshot_id for s in listed] == [second.snapshot_id, first.snapshot_id]
        latest = client.latest("redis-1")
        assert latest is not None and latest.snapshot_id == second.snapshot_id
        assert client.latest("never-mirrored") is None
        stats = client.restore(first.snapshot_id, tmp_path / "out")
        assert stats.logical_bytes == first.logical_bytes
    restored = tmp_path / "out"
    assert read_tree(restored) == {k: v for k, v in read_tree(source).items() if k != "link"}
    assert (restored / "data" / "dump.rdb").stat().st_mode & 0o777 == 0o640
    assert (restored / "data" / "dump.rdb").stat().st_mtime == pytest.approx(
        (source / "data" / "dump.rdb").stat().st_mtime, abs=1e-3
    )


def test_small_change_sends_only_changed_chunks(store: StoreProcess, tmp_path: Path) -> None:
    source = _make_state(tmp_path / "src", seed=2, megabytes=4)
    with MirrorStoreClient(store.url, TOKEN_A) as client:
        client.upload_directory("redis-2", source, timestamp=1.0)
        dump = source / "data" / "dump.rdb"
        data = bytearray(dump.read_bytes())
        data[2_000_000:2_000_010] = b"0123456789"
        dump.write_bytes(bytes(data))
        changed = client.upload_directory("redis-2", source, timestamp=2.0)
        assert 0 < changed.sent_bytes < 1_100_000  # one or two chunks (128 KiB average, 512 KiB max), not 4 MB
        client.restore(changed.snapshot_id, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "dump.rdb").read_bytes() == bytes(data)


def test_retention_keeps_last_n_and_gc_frees_their_chunks(store: StoreProcess, tmp_path: Path) -> None:
    with MirrorStoreClient(store.url, TOKEN_A) as client:
        ids = []
        for step in range(4):
            source = tmp_path / f"s{step}"
            source.mkdir()
            (source / "state").write_bytes(np.random.default_rng(step + 10).bytes(200_000))
            ids.append(client.upload_directory("kv", source, timestamp=float(step), retention=Retention(keep_last=2)))
        assert [s.snapshot_id for s in client.list_snapshots("kv")] == [ids[3].snapshot_id, ids[2].snapshot_id]
        client.set_retention("kv", Retention(keep_last=1))
        assert [s.snapshot_id for s in client.list_snapshots("kv")] == [ids[3].snapshot_id]
        client.gc()  # the expired snapshots' chunks are still leased (15 min): nothing kept is at risk
        client.restore(ids[3].snapshot_id, tmp_path / "out")
    assert (tmp_path / "out" / "state").read_bytes() == (tmp_path / "s3" / "state").read_bytes()


def test_corrupt_chunk_on_disk_is_detected_at_restore(store: StoreProcess, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    payload = np.random.default_rng(7).bytes(1_000_000)
    (source / "victim.bin").write_bytes(payload)
    with MirrorStoreClient(store.url, TOKEN_B) as client:
        info = client.upload_directory("corrupt-me", source, timestamp=1.0)
        manifest = client.manifest(info.snapshot_id)
        victim = manifest["files"][0]["chunks"][1]
        chunk_file = store.root / "t" / "ivn-b" / "c" / victim
        raw = bytearray(chunk_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF  # same size, one flipped byte: only the hash can tell
        chunk_file.write_bytes(bytes(raw))
        with pytest.raises(StoreClientError) as failed:
            client.restore(info.snapshot_id, tmp_path / "out")
    message = str(failed.value)
    assert victim in message and info.snapshot_id in message and "victim.bin" in message
    assert not (tmp_path / "out" / "victim.bin").exists()  # never left under its real name
    assert list((tmp_path / "out").iterdir()) == []


def test_metrics_count_ingest_dedup_restores(store: StoreProcess) -> None:
    text = httpx.get(f"{store.url}/metrics").text
    for name in (
        "mirrorstore_ingested_bytes_total",
        "mirrorstore_chunks_deduplicated_total",
        "mirrorstore_restores_total",
        "mirrorstore_gc_runs_total",
    ):
        assert name in text


# ----------------------------------------------------------------------------------------- refusals
@pytest.fixture
def committed(store: StoreProcess, tmp_path: Path) -> tuple[str, dict[str, object]]:
    """A snapshot of tenant A, and a valid commit body whose chunks are in A's store."""
    source = tmp_path / "refusal-src"
    source.mkdir()
    (source / "f").write_bytes(b"precious state " * 1000)
    with MirrorStoreClient(store.url, TOKEN_A) as client:
        info = client.upload_directory("victim", source, timestamp=time.time())
        manifest = client.manifest(info.snapshot_id)
    body = {"timestamp": 1.0, "files": manifest["files"]}
    return info.snapshot_id, body


def _raw(
    store: StoreProcess, method: str, path: str, body: bytes = b"", token: str | None = TOKEN_A
) -> tuple[int, dict]:
    """A request sent byte for byte (no client-side URL normalisation of '..')."""
    parts = urlsplit(store.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, {"raw": data[:200].decode(errors="replace")}


def _refusals(snapshot_id: str, body: dict[str, object]) -> list[tuple[str, str, str, bytes, str | None, set[int]]]:
    good = json.dumps(body).encode()
    files = body["files"]
    assert isinstance(files, list)

    def with_path(path: str) -> bytes:
        return json.dumps({**body, "files": [{**files[0], "path": path}]}).encode()

    missing_chunk = json.dumps({**body, "files": [{**files[0], "chunks": ["ab" * 32], "size": 1}]}).encode()
    bad_frame = encode_frame(chunk_hash(b"claimed content"), compressor().compress(b"other content"))
    commit = "/v1/instances/victim/snapshots"
    return [
        ("no token", "GET", f"/v1/snapshots/{snapshot_id}", b"", None, {401}),
        ("wrong token", "GET", f"/v1/snapshots/{snapshot_id}", b"", "not-a-token", {401}),
        ("wrong token deletes", "DELETE", f"/v1/snapshots/{snapshot_id}", b"", "not-a-token", {401}),
        ("other tenant reads", "GET", f"/v1/snapshots/{snapshot_id}", b"", TOKEN_B, {403, 404}),
        ("other tenant restores", "GET", f"/v1/snapshots/{snapshot_id}/restore", b"", TOKEN_B, {403, 404}),
        ("other tenant deletes", "DELETE", f"/v1/snapshots/{snapshot_id}", b"", TOKEN_B, {403, 404}),
        ("other tenant lists", "GET", "/v1/instances/victim/latest", b"", TOKEN_B, {403, 404}),
        ("dotdot snapshot id", "DELETE", "/v1/snapshots/..", b"", TOKEN_A, {400, 404}),
        ("encoded dotdot id", "DELETE", "/v1/snapshots/%2e%2e", b"", TOKEN_A, {400, 404}),
        ("encoded traversal id", "GET", "/v1/snapshots/%2e%2e%2f%2e%2e%2ft", b"", TOKEN_A, {400, 404}),
        ("dotdot instance", "POST", "/v1/instances/../snapshots", good, TOKEN_A, {400, 404}),
        ("encoded dotdot instance", "POST", "/v1/instances/%2e%2e/snapshots", good, TOKEN_A, {400, 404}),
        ("absolute path in manifest", "POST", commit, with_path("/etc/cron.d/x"), TOKEN_A, {422}),
        ("traversal path in manifest", "POST", commit, with_path("../../x"), TOKEN_A, {422}),
        ("malformed JSON", "POST", commit, b"{not json", TOKEN_A, {400}),
        ("invalid manifest", "POST", commit, json.dumps({"timestamp": "soon"}).encode(), TOKEN_A, {422}),
        ("missing chunk", "POST", commit, missing_chunk, TOKEN_A, {409, 422}),
        ("other tenant's chunks", "POST", commit, good, TOKEN_B, {409}),
        ("bad chunk hash", "POST", "/v1/chunks/missing", b'{"hashes": ["../../etc/passwd"]}', TOKEN_A, {400}),
        ("chunk not matching its address", "POST", "/v1/chunks", bad_frame, TOKEN_A, {400}),
        ("truncated frame", "POST", "/v1/chunks", bad_frame[:-3], TOKEN_A, {400}),
        ("oversize body", "POST", "/v1/chunks", b"\0" * (17 * 1024 * 1024), TOKEN_A, {413}),
        ("oversize manifest", "POST", commit, b" " * (17 * 1024 * 1024), TOKEN_A, {413}),
    ]


def test_bad_requests_are_refused_with_a_clear_status_and_change_nothing(
    store: StoreProcess, committed: tuple[str, dict[str, object]]
) -> None:
    snapshot_id, body = committed
    before = tree_state(store.root)
    problems = []
    for label, method, path, data, token, allowed in _refusals(snapshot_id, body):
        status, answer = _raw(store, method, path, data, token)
        if status not in allowed:
            problems.append(f"{label}: {method} {path} -> {status} {answer}, expected {sorted(allowed)}")
        elif "error" not in answer or not answer["error"]:
            problems.append(f"{label}: no JSON error message: {answer}")
        if tree_state(store.root) != before:
            problems.append(f"{label}: stored data changed")
            before = tree_state(store.root)
    assert not problems, "\n".join(problems)
    status, answer = _raw(store, "GET", f"/v1/snapshots/{snapshot_id}")
    assert status == 200 and answer["snapshot_id"] == snapshot_id  # still there, still A's


def test_error_bodies_name_the_field(store: StoreProcess, committed: tuple[str, dict[str, object]]) -> None:
    _, body = committed
    files = body["files"]
    assert isinstance(files, list)
    bad = json.dumps({**body, "files": [{**files[0], "path": "../x"}]}).encode()
    status, answer = _raw(store, "POST", "/v1/instances/victim/snapshots", bad)
    assert status == 422 and answer["field"] == "files.0.path" and "'..'" in answer["error"]
    status, answer = _raw(store, "GET", "/v1/snapshots/x", token="nope")
    assert status == 401 and answer["field"] == "Authorization"


def test_client_errors_carry_status_and_message(store: StoreProcess) -> None:
    with MirrorStoreClient(store.url, "wrong") as client, pytest.raises(StoreClientError) as failed:
        client.list_snapshots("anything")
    assert failed.value.status == 401 and "token" in failed.value.message
    with MirrorStoreClient("http://127.0.0.1:9", TOKEN_A, timeout_s=2) as client, pytest.raises(StoreClientError):
        client.latest("x")
