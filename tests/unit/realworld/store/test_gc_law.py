"""The GC law: after any sequence of commits, deletes, retention changes and GCs, every kept snapshot
restores byte-identical, and a chunk uploaded for a commit still in progress survives GC."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realworld.store.chunking import chunk_boundaries, chunk_hash, compressor, decompress_chunk, decompressor
from realworld.store.frames import ERROR_DIGEST, decode_frames, encode_frame
from realworld.store.fs_backend import FileSystemBackend
from realworld.store.service import MirrorStoreService, StoreError

LEASE_S = 100.0
TENANT = "ivn-b"
# A pool of file contents that share chunks (prefixes/suffixes of one buffer), so GC has shared chunks to
# get wrong.
_BASE = os.urandom(600_000)
POOL = [_BASE[:200_000], _BASE[100_000:400_000], _BASE[:50_000] + b"edit" + _BASE[50_000:300_000], b"", b"tiny"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _scratch_dir() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _upload(service: MirrorStoreService, files: dict[str, bytes]) -> list[dict[str, object]]:
    comp = compressor()
    frames: list[bytes] = []
    entries: list[dict[str, object]] = []
    for path, data in files.items():
        chunks = []
        for offset, length in chunk_boundaries(data):
            piece = data[offset : offset + length]
            digest = chunk_hash(piece)
            chunks.append(digest)
            frames.append(encode_frame(digest, comp.compress(piece)))
        entries.append({"path": path, "mode": 0o600, "size": len(data), "mtime": 0.0, "chunks": chunks})
    if frames:
        service.ingest_chunks(TENANT, b"".join(frames))
    return entries


def _restore(service: MirrorStoreService, snapshot_id: str) -> dict[str, bytes]:
    manifest = service.get_manifest(TENANT, snapshot_id)
    stream = b"".join(service.restore_frames(TENANT, manifest))
    decomp = decompressor()
    pieces: list[bytes] = []
    for digest, payload in decode_frames(stream):
        assert bytes.fromhex(digest) != ERROR_DIGEST, bytes(payload).decode()
        pieces.append(decompress_chunk(decomp, bytes(payload)))
    restored: dict[str, bytes] = {}
    cursor = 0
    for entry in manifest.files:
        restored[entry.path] = b"".join(pieces[cursor : cursor + len(entry.chunks)])
        cursor += len(entry.chunks)
    assert cursor == len(pieces)
    return restored


op = st.one_of(
    st.tuples(st.just("commit"), st.sampled_from(["a", "b"]), st.lists(st.integers(0, len(POOL) - 1), max_size=3)),
    st.tuples(st.just("upload_pending"), st.just(""), st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=2)),
    st.tuples(st.just("commit_pending"), st.sampled_from(["a", "b"]), st.just([])),
    st.tuples(st.just("delete"), st.just(""), st.lists(st.integers(0, 50), min_size=1, max_size=1)),
    st.tuples(st.just("gc"), st.just(""), st.just([])),
    st.tuples(st.just("retention"), st.sampled_from(["a", "b"]), st.lists(st.integers(1, 3), min_size=1, max_size=1)),
    # Steps of either side of the lease, so GCs run both while chunks are leased and after.
    st.tuples(st.just("tick"), st.just(""), st.lists(st.sampled_from([10, 60, 101, 150]), min_size=1, max_size=1)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=14))
def test_kept_snapshots_restore_byte_identical_after_any_history(ops: list[tuple[str, str, list[int]]]) -> None:
    with tempfile.TemporaryDirectory(dir=_scratch_dir()) as scratch:
        clock = Clock()
        service = MirrorStoreService(FileSystemBackend(Path(scratch)), lease_s=LEASE_S, clock=clock)
        expected: dict[str, dict[str, bytes]] = {}
        pending: tuple[list[dict[str, object]], dict[str, bytes], float] | None = None
        gc_after_lease = False
        for name, instance, args in ops:
            if name == "commit":
                files = {f"f{i}/data": POOL[k] for i, k in enumerate(args)}
                manifest = service.commit(TENANT, instance, {"timestamp": clock.now, "files": _upload(service, files)})
                expected[manifest.snapshot_id] = files
            elif name == "upload_pending":
                files = {f"p{i}": POOL[k] for i, k in enumerate(args)}
                pending = (_upload(service, files), files, clock.now)
                gc_after_lease = False
            elif name == "commit_pending" and pending is not None:
                entries, files, _ = pending
                pending = None
                try:
                    manifest = service.commit(TENANT, instance, {"timestamp": clock.now, "files": entries})
                except StoreError as exc:
                    # Refused only when its lease ran out and a GC ran since: never accepted incomplete.
                    assert exc.status == 409 and gc_after_lease, exc.message
                    continue
                expected[manifest.snapshot_id] = files
            elif name == "delete" and expected:
                victim = sorted(expected)[args[0] % len(expected)]
                if any(m.snapshot_id == victim for i in "ab" for m in service.list_snapshots(TENANT, i)):
                    service.delete_snapshot(TENANT, victim)
            elif name == "gc":
                service.gc(TENANT)
                if pending is not None and clock.now - pending[2] > LEASE_S:
                    gc_after_lease = True
            elif name == "retention":
                service.set_retention(TENANT, instance, {"keep_last": args[0]})
            elif name == "tick":
                clock.now += args[0]
            kept = {m.snapshot_id for i in "ab" for m in service.list_snapshots(TENANT, i)}
            assert kept <= set(expected)
            for snapshot_id in kept:
                assert _restore(service, snapshot_id) == expected[snapshot_id]


def test_unreferenced_chunks_are_collected_after_their_lease(tmp_path: Path) -> None:
    clock = Clock()
    service = MirrorStoreService(FileSystemBackend(tmp_path), lease_s=LEASE_S, clock=clock)
    entries = _upload(service, {"x": POOL[0]})
    assert service.gc(TENANT).deleted_chunks == 0  # leased: a commit may still come
    manifest = service.commit(TENANT, "a", {"timestamp": 1.0, "files": entries})
    service.delete_snapshot(TENANT, manifest.snapshot_id)
    clock.now += LEASE_S + 1
    result = service.gc(TENANT)
    assert result.deleted_chunks == len(entries[0]["chunks"])  # type: ignore[arg-type]
    assert list(service.backend.list(f"t/{TENANT}/c/")) == []
    with pytest.raises(StoreError) as refused:
        service.commit(TENANT, "a", {"timestamp": 2.0, "files": entries})
    assert refused.value.status == 409 and "not in the store" in refused.value.message
