"""The Mirror Store's logic, independent of HTTP: ingest, commit, list, restore, retention, GC.

Layout of objects in the backend (one namespace per tenant, so content held by one tenant can never be
probed by another through dedup answers)::

    t/<tenant>/c/<hash>                     chunk: zstd frame of the chunk whose blake3 is <hash>
    t/<tenant>/s/<instance>/<snapshot_id>   committed manifest (JSON of SnapshotManifest)
    t/<tenant>/r/<instance>                 the instance's retention (JSON of Retention)

**Atomic commit.** A snapshot exists exactly when its manifest object exists; the manifest is written
with one atomic ``put`` only after every chunk it references was found present (and durable: chunk
puts are durable before they are acknowledged). A crash before the put leaves only unreferenced
chunks, which GC removes; a crash after it leaves a complete snapshot.

**Garbage collection (mark and sweep) and in-flight commits.** Mark reads every manifest of the tenant
and collects referenced chunks; sweep deletes the other chunks, except those under a *pending-upload
lease*. A lease is taken on a chunk whenever a client asks whether it is missing or uploads it, and
lasts ``lease_s`` (default 15 min): that is the window between "the store told me it has (or now has)
this chunk" and the commit that references it. Leases, rather than a grace period on chunk file age,
because a chunk can be *old* and unreferenced (its snapshot expired) yet be exactly what a new commit
is about to reuse after a missing-check said "present": an age rule would delete it, a lease does not.
The lease table and the sweep share one lock, so no chunk leased before the sweep's check is deleted.
Leases live in memory: after a store restart they are gone, and a commit whose chunk was collected in
between is refused (409, naming the chunk) instead of being accepted incomplete: commit checks every
chunk under the same lock; the client then re-uploads and retries. So GC can cost a retry, but never
a kept snapshot's bytes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import zstandard
from pydantic import ValidationError

from realworld.store.backend import BackendError, ObjectBackend
from realworld.store.chunking import chunk_hash, decompress_chunk, decompressor, is_chunk_hash
from realworld.store.frames import FrameError, decode_frames, encode_error_frame, encode_frame
from realworld.store.manifest import (
    CommitRequest,
    Retention,
    SnapshotManifest,
    check_identifier,
    new_snapshot_id,
)
from realworld.store.metrics import StoreMetrics

DEFAULT_LEASE_S = 15 * 60.0
MAX_HASHES_PER_QUERY = 100_000


class StoreError(Exception):
    """A request the store refuses; ``status`` is the HTTP status, ``field`` the offending request part."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, str]:
        """The JSON error body."""
        return {"error": self.message, "field": self.field}


class CorruptChunkError(StoreError):
    """A chunk needed by a restore is missing or does not hash to its address."""


@dataclass(frozen=True)
class IngestResult:
    """What one upload batch did."""

    received_chunks: int
    stored_chunks: int
    deduplicated_chunks: int
    received_bytes: int
    raw_bytes: int


@dataclass(frozen=True)
class GcResult:
    """What one garbage collection did."""

    kept_snapshots: int
    referenced_chunks: int
    deleted_chunks: int
    leased_chunks_spared: int
    freed_bytes: int


def _chunk_key(tenant: str, digest: str) -> str:
    return f"t/{tenant}/c/{digest}"


def _snapshot_prefix(tenant: str, instance_id: str | None = None) -> str:
    return f"t/{tenant}/s/{instance_id}/" if instance_id else f"t/{tenant}/s/"


class MirrorStoreService:
    """Snapshot store over an :class:`ObjectBackend`; thread-safe.

    Args:
        backend: Where objects live.
        lease_s: How long a missing-check or upload protects a chunk from GC (see module docstring).
        clock: Wall clock (s); tests inject one to age snapshots and leases.
        metrics: Counters to update (a fresh set if omitted).
    """

    def __init__(
        self,
        backend: ObjectBackend,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self.backend = backend
        self.lease_s = lease_s
        self.clock = clock
        self.metrics = metrics or StoreMetrics()
        self._lock = threading.RLock()
        self._leases: dict[tuple[str, str], float] = {}
        self._next_prune = 0.0
        self._local = threading.local()

    # ----------------------------------------------------------------- chunks
    def _decompressor(self) -> zstandard.ZstdDecompressor:
        if not hasattr(self._local, "decomp"):
            self._local.decomp = decompressor()
        return self._local.decomp

    def _lease(self, tenant: str, digests: Iterable[str]) -> None:
        now = self.clock()
        if now >= self._next_prune:
            # Expired leases are dropped every quarter lease, so the table holds at most ~1.25 lease periods of
            # addresses even when no GC runs.
            self._leases = {k: until for k, until in self._leases.items() if until > now}
            self._next_prune = now + self.lease_s / 4
        until = now + self.lease_s
        for digest in digests:
            self._leases[(tenant, digest)] = until

    def missing_chunks(self, tenant: str, hashes: list[str]) -> list[str]:
        """Which of ``hashes`` the tenant's store lacks (in the order given); leases all of them.

        Raises:
            StoreError: 400 if a hash is malformed or the batch is too large.
        """
        if not isinstance(hashes, list):
            raise StoreError(400, "'hashes' must be a list of blake3 hex digests", "hashes")
        if len(hashes) > MAX_HASHES_PER_QUERY:
            raise StoreError(413, f"at most {MAX_HASHES_PER_QUERY} hashes per query, got {len(hashes)}", "hashes")
        for index, digest in enumerate(hashes):
            if not is_chunk_hash(digest):
                raise StoreError(400, f"hashes[{index}]: not a blake3 hex digest: {str(digest)[:80]!r}", "hashes")
        with self._lock:
            self._lease(tenant, hashes)
            missing = [d for d in dict.fromkeys(hashes) if not self.backend.exists(_chunk_key(tenant, d))]
        self.metrics.chunks_deduplicated.inc(len(set(hashes)) - len(missing))
        return missing

    def ingest_chunks(self, tenant: str, body: bytes) -> IngestResult:
        """Verify and store a batch of chunk frames; idempotent (present chunks are skipped).

        Every frame is decompressed and blake3-hashed before anything is written, so a batch with one
        bad frame writes nothing. Written chunks are durable when this returns.

        Raises:
            StoreError: 400 naming the frame whose payload is malformed or does not hash to its address.
        """
        started = time.perf_counter()
        decomp = self._decompressor()
        frames: dict[str, bytes] = {}
        received_bytes = 0
        raw_bytes = 0
        count = 0
        try:
            for index, (digest, payload) in enumerate(decode_frames(body)):
                count += 1
                received_bytes += len(payload)
                payload_bytes = payload.tobytes()
                try:
                    raw = decompress_chunk(decomp, payload_bytes)
                except ValueError as exc:
                    raise StoreError(400, f"chunk frame {index} ({digest}): {exc}", "body") from None
                if chunk_hash(raw) != digest:
                    raise StoreError(400, f"chunk frame {index}: content does not hash to its address {digest}", "body")
                raw_bytes += len(raw)
                frames[digest] = payload_bytes
        except FrameError as exc:
            raise StoreError(400, f"upload body: {exc}", "body") from None
        with self._lock:
            self._lease(tenant, frames)
            todo = [(d, p) for d, p in frames.items() if not self.backend.exists(_chunk_key(tenant, d))]
        try:
            items = [(_chunk_key(tenant, d), p) for d, p in todo]
            put_many = getattr(self.backend, "put_many_if_absent", None)
            written = put_many(items) if put_many is not None else [self.backend.put_if_absent(k, p) for k, p in items]
        except BackendError as exc:
            raise StoreError(507, f"storing chunks failed: {exc}", "body") from None
        stored = sum(written)
        self.metrics.ingested_bytes.inc(received_bytes)
        self.metrics.stored_bytes.inc(sum(len(p) for (_, p), w in zip(todo, written, strict=True) if w))
        self.metrics.chunks_stored.inc(stored)
        self.metrics.chunks_deduplicated.inc(count - stored)
        self.metrics.ingest_seconds.inc(time.perf_counter() - started)
        return IngestResult(count, stored, count - stored, received_bytes, raw_bytes)

    # -------------------------------------------------------------- snapshots
    def commit(self, tenant: str, instance_id: str, payload: object) -> SnapshotManifest:
        """Commit a snapshot atomically after checking every referenced chunk is present.

        Raises:
            StoreError: 400 bad instance id, 422 invalid manifest, 409 naming a missing chunk.
        """
        instance_id = self._check_id(instance_id, "instance_id")
        try:
            request = CommitRequest.model_validate(payload)
        except ValidationError as exc:
            raise _manifest_error(exc) from None
        with self._lock:
            stored_bytes = 0
            for digest in sorted({c for entry in request.files for c in entry.chunks}):
                try:
                    stored_bytes += self.backend.size(_chunk_key(tenant, digest))
                except KeyError:
                    raise StoreError(409, f"chunk {digest} is not in the store; upload it first", "files") from None
            manifest = SnapshotManifest(
                snapshot_id=new_snapshot_id(),
                tenant=tenant,
                instance_id=instance_id,
                timestamp=request.timestamp,
                files=request.files,
                process_list=request.process_list,
                file_list=request.file_list if request.file_list is not None else [f.path for f in request.files],
                logical_bytes=sum(f.size for f in request.files),
                stored_bytes=stored_bytes,
            )
            if request.retention is not None:
                self._put(f"t/{tenant}/r/{instance_id}", request.retention.model_dump_json().encode())
            manifest_key = f"{_snapshot_prefix(tenant, instance_id)}{manifest.snapshot_id}"
            self._put(manifest_key, manifest.model_dump_json().encode())
            self.metrics.commits.inc()
            self.apply_retention(tenant, instance_id)
        return manifest

    def set_retention(self, tenant: str, instance_id: str, payload: object) -> Retention:
        """Change an instance's retention at run time and apply it now."""
        instance_id = self._check_id(instance_id, "instance_id")
        try:
            retention = Retention.model_validate(payload)
        except ValidationError as exc:
            raise _manifest_error(exc) from None
        with self._lock:
            self._put(f"t/{tenant}/r/{instance_id}", retention.model_dump_json().encode())
            self.apply_retention(tenant, instance_id)
        return retention

    def retention(self, tenant: str, instance_id: str) -> Retention | None:
        """The instance's stored retention, if any."""
        try:
            return Retention.model_validate_json(self.backend.get(f"t/{tenant}/r/{instance_id}"))
        except KeyError:
            return None

    def apply_retention(self, tenant: str, instance_id: str) -> list[str]:
        """Delete the instance's snapshots its retention no longer keeps; returns their ids.

        The newest snapshot (by timestamp, then id) is always kept. Age is measured from the snapshot's
        capture timestamp (the agent's clock), because retention is about how old the mirrored state is.
        """
        retention = self.retention(tenant, instance_id)
        if retention is None:
            return []
        with self._lock:
            snapshots = self.list_snapshots(tenant, instance_id)  # newest first
            now = self.clock()
            expired: list[str] = []
            for rank, snap in enumerate(snapshots):
                if rank == 0:
                    continue
                too_many = retention.keep_last is not None and rank >= retention.keep_last
                too_old = retention.max_age_s is not None and now - snap.timestamp > retention.max_age_s
                if too_many or too_old:
                    self.backend.delete(f"{_snapshot_prefix(tenant, instance_id)}{snap.snapshot_id}")
                    expired.append(snap.snapshot_id)
        self.metrics.snapshots_expired.inc(len(expired))
        return expired

    def list_snapshots(self, tenant: str, instance_id: str) -> list[SnapshotManifest]:
        """The instance's snapshots, newest first."""
        instance_id = self._check_id(instance_id, "instance_id")
        manifests = []
        for key in self.backend.list(_snapshot_prefix(tenant, instance_id)):
            try:
                manifests.append(SnapshotManifest.model_validate_json(self.backend.get(key)))
            except KeyError:
                continue  # deleted between list and get
        manifests.sort(key=lambda m: (m.timestamp, m.snapshot_id), reverse=True)
        return manifests

    def latest(self, tenant: str, instance_id: str) -> SnapshotManifest:
        """The instance's newest snapshot; 404 if it has none."""
        snapshots = self.list_snapshots(tenant, instance_id)
        if not snapshots:
            raise StoreError(404, f"instance {instance_id} has no snapshot", "instance_id")
        return snapshots[0]

    def _snapshot_key(self, tenant: str, snapshot_id: str) -> str:
        snapshot_id = self._check_id(snapshot_id, "snapshot_id")
        suffix = f"/{snapshot_id}"
        for key in self.backend.list(_snapshot_prefix(tenant)):
            if key.endswith(suffix):
                return key
        # Same answer whether the id is unknown or another tenant's: existence is not revealed.
        raise StoreError(404, f"snapshot {snapshot_id} not found", "snapshot_id")

    def get_manifest(self, tenant: str, snapshot_id: str) -> SnapshotManifest:
        """One snapshot's manifest; 404 if unknown to this tenant."""
        key = self._snapshot_key(tenant, snapshot_id)
        try:
            return SnapshotManifest.model_validate_json(self.backend.get(key))
        except KeyError:
            raise StoreError(404, f"snapshot {snapshot_id} not found", "snapshot_id") from None

    def delete_snapshot(self, tenant: str, snapshot_id: str) -> None:
        """Delete one snapshot (its chunks go at the next GC); 404 if unknown to this tenant."""
        with self._lock:
            self.backend.delete(self._snapshot_key(tenant, snapshot_id))

    def restore_frames(self, tenant: str, manifest: SnapshotManifest) -> Iterator[bytes]:
        """The snapshot's chunks as frames in manifest order, each verified before it is yielded.

        A missing or corrupt chunk ends the stream with an error frame naming the chunk, the file and
        the snapshot; nothing after it is sent, so a corrupt chunk is never silently restored.
        """
        self.metrics.restores.inc()
        # Its own decompressor: the generator is resumed from whichever worker thread is free.
        decomp = decompressor()
        for entry in manifest.files:
            for digest in entry.chunks:
                problem = ""
                try:
                    payload = self.backend.get(_chunk_key(tenant, digest))
                    raw = decompress_chunk(decomp, payload)
                    if chunk_hash(raw) != digest:
                        problem = "is corrupt (content does not hash to its address)"
                except KeyError:
                    problem = "is missing from the store"
                except (ValueError, BackendError) as exc:
                    problem = f"is corrupt ({exc})"
                if problem:
                    self.metrics.corrupt_chunks.inc()
                    yield encode_error_frame(
                        f"snapshot {manifest.snapshot_id}: chunk {digest} of file {entry.path!r} {problem}",
                        "chunk",
                    )
                    return
                self.metrics.restore_bytes.inc(len(raw))
                yield encode_frame(digest, payload)

    # --------------------------------------------------------------------- GC
    def gc(self, tenant: str) -> GcResult:
        """Mark and sweep the tenant's chunks; never deletes a referenced or leased chunk."""
        with self._lock:
            now = self.clock()
            self._leases = {k: until for k, until in self._leases.items() if until > now}
            referenced: set[str] = set()
            kept = 0
            for key in self.backend.list(_snapshot_prefix(tenant)):
                try:
                    referenced |= SnapshotManifest.model_validate_json(self.backend.get(key)).chunk_set()
                except KeyError:
                    continue
                kept += 1
            doomed: list[str] = []
            spared = 0
            freed = 0
            for key in self.backend.list(f"t/{tenant}/c/"):
                digest = key.rsplit("/", 1)[1]
                if digest in referenced:
                    continue
                if (tenant, digest) in self._leases:
                    spared += 1
                    continue
                try:
                    freed += self.backend.size(key)
                except KeyError:
                    continue
                doomed.append(key)
            delete_many = getattr(self.backend, "delete_many", None)
            if delete_many is not None:
                delete_many(doomed)
            else:
                for key in doomed:
                    self.backend.delete(key)
        self.metrics.gc_runs.inc()
        self.metrics.gc_deleted_chunks.inc(len(doomed))
        return GcResult(kept, len(referenced), len(doomed), spared, freed)

    def tenants_with_data(self) -> list[str]:
        """Tenants that have any object (for a periodic GC over the whole store)."""
        return sorted({key.split("/", 2)[1] for key in self.backend.list("t/")})

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _check_id(value: str, field: str) -> str:
        try:
            return check_identifier(value, field)
        except ValueError as exc:
            raise StoreError(400, str(exc), field) from None

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.backend.put(key, data)
        except BackendError as exc:
            raise StoreError(507, f"storing failed: {exc}", "") from None


def _manifest_error(exc: ValidationError) -> StoreError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = first["msg"].removeprefix("Value error, ")
    return StoreError(422, f"invalid manifest: {where}: {message}", where)


def summary_json(manifest: SnapshotManifest) -> bytes:
    """JSON of a manifest's summary (list/latest/commit answers)."""
    return json.dumps(manifest.summary()).encode()
