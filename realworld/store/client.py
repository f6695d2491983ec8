"""``MirrorStoreClient``: the one client of the Mirror Store, used by the RMA agent and the live controller.

Upload works in *groups* of files (up to ``GROUP_RAW_BYTES`` of new data or ``GROUP_HASHES`` chunk
addresses): chunk and hash the group's files, ask the store which addresses it lacks in one request,
compress and send only those in batched frames, then drop the group's data. Memory stays bounded by a
group however large the directory, and a file is read once per snapshot: the bytes sent are the bytes
hashed, even if the file changes while it is being mirrored.

A files cache (path, size, mtime_ns, inode → chunk addresses), like borg's, skips re-reading files that
did not change since the previous upload by this client. If the store lacks a cached file's chunk (GC
removed it), that file is re-read. Files modified within the last second are not cached, so a write in
the same mtime tick as the read can never be missed.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from realworld.store.chunking import chunk_hash, compressor, decompress_chunk, decompressor, iter_chunks
from realworld.store.frames import ERROR_DIGEST, HEADER, encode_frame
from realworld.store.manifest import check_relative_path

GROUP_RAW_BYTES = 64 * 1024 * 1024
GROUP_HASHES = 20_000
UPLOAD_BATCH_BYTES = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 3
CACHE_MIN_AGE_NS = 1_000_000_000
PARTIAL_SUFFIX = ".mirrortwin-partial"


class StoreClientError(Exception):
    """A store request failed: ``status`` is the HTTP status (0: no answer), ``message`` the store's reason."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(f"mirror store: {message}" + (f" (HTTP {status})" if status else ""))
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Retention:
    """How many snapshots of an instance the store keeps; ``None`` means no limit of that kind.

    Attributes:
        keep_last: Keep at most this many most recent snapshots (>= 1).
        max_age_s: Drop snapshots older than this (s, > 0); the latest is always kept, so a quiet agent
            never loses its only mirror.
    """

    keep_last: int | None = None
    max_age_s: float | None = None

    def __post_init__(self) -> None:
        """Refuse limits the store would refuse, naming the field, before anything is sent."""
        if self.keep_last is not None and (isinstance(self.keep_last, bool) or self.keep_last < 1):
            raise ValueError(f"keep_last: must be an integer >= 1, got {self.keep_last!r}")
        if self.max_age_s is not None and not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise ValueError(f"max_age_s: must be a finite number > 0, got {self.max_age_s!r}")


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A committed snapshot as the client (and the agent that uploaded it) sees it.

    Attributes:
        snapshot_id: The store's id of the snapshot.
        instance_id: The instance mirrored.
        timestamp: Capture time (epoch s).
        logical_bytes: Size of the captured files before dedup and compression.
        stored_bytes: Bytes the store holds for this snapshot's new chunks.
        sent_bytes: Compressed chunk bytes this client sent for the snapshot (0 when read from a listing).
        file_count: Number of files in the snapshot.
        process_list: Processes recorded with the state.
        file_list: Files recorded with the state.
    """

    snapshot_id: str
    instance_id: str
    timestamp: float
    logical_bytes: int
    stored_bytes: int
    sent_bytes: int
    file_count: int
    process_list: tuple[str, ...] = ()
    file_list: tuple[str, ...] = ()

    @classmethod
    def from_summary(cls, data: dict[str, Any], sent_bytes: int = 0) -> SnapshotInfo:
        """From the store's JSON summary."""
        return cls(
            snapshot_id=data["snapshot_id"],
            instance_id=data["instance_id"],
            timestamp=float(data["timestamp"]),
            logical_bytes=int(data["logical_bytes"]),
            stored_bytes=int(data["stored_bytes"]),
            sent_bytes=sent_bytes,
            file_count=int(data["file_count"]),
            process_list=tuple(data["process_list"]),
            file_list=tuple(data["file_list"]),
        )


@dataclass(frozen=True)
class RestoreStats:
    """What a restore wrote."""

    snapshot_id: str
    file_count: int
    logical_bytes: int
    received_bytes: int
    seconds: float


@dataclass
class _PendingFile:
    entry: dict[str, Any]
    absolute: Path
    cache_key: tuple[int, int, int] | None
    chunks: list[tuple[str, bytes]] | None  # None: from the files cache, data not read


@dataclass
class _Group:
    files: list[_PendingFile] = field(default_factory=list)
    raw_bytes: int = 0
    hashes: int = 0


def _walk_regular_files(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Regular files under ``root`` (symlinks, devices, sockets skipped), sorted by relative path."""
    found: list[tuple[str, Path]] = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            absolute = Path(dirpath) / name
            found.append((absolute.relative_to(root).as_posix(), absolute))
    for relative, absolute in sorted(found):
        try:
            st = os.lstat(absolute)
        except FileNotFoundError:
            continue  # removed while walking a live state directory
        if stat.S_ISREG(st.st_mode):
            yield relative, absolute, st


class MirrorStoreClient:
    """Synchronous client of one Mirror Store for one tenant.

    Args:
        base_url: e.g. ``http://127.0.0.1:8700``.
        token: The tenant's bearer token (clear text; the store keeps only its digest).
        timeout_s: Per-request timeout.
    """

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )
        self._files_cache: dict[str, tuple[tuple[int, int, int], list[str]]] = {}
        self._compressor = compressor()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> MirrorStoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreClientError(0, f"{method} {url}: {exc}") from None
        if response.status_code >= 400:
            _raise_for(response)
        return response

    # ---------------------------------------------------------------- upload
    def upload_directory(
        self,
        instance_id: str,
        root: Path,
        *,
        timestamp: float,
        process_list: Sequence[str] = (),
        file_list: Sequence[str] | None = None,
        retention: Retention | None = None,
    ) -> SnapshotInfo:
        """Mirror every regular file under ``root`` as a new snapshot of ``instance_id``.

        Only chunks the store lacks are sent. If the commit is refused because a chunk vanished in
        between (the store's GC ran after a restart), the upload is redone once without the files cache.

        Raises:
            StoreClientError: the store refused a request (status and reason from the store).
        """
        root = Path(root)
        if not root.is_dir():
            raise StoreClientError(0, f"state directory {root}: not a directory")
        for attempt in (0, 1):
            entries, sent = self._upload_files(root)
            body: dict[str, Any] = {
                "timestamp": timestamp,
                "files": entries,
                "process_list": list(process_list),
                "file_list": list(file_list) if file_list is not None else None,
            }
            if retention is not None:
                body["retention"] = {"keep_last": retention.keep_last, "max_age_s": retention.max_age_s}
            try:
                response = self._request("POST", f"/v1/instances/{instance_id}/snapshots", json=body)
            except StoreClientError as exc:
                if exc.status == 409 and attempt == 0:
                    self._files_cache.clear()
                    continue
                raise
            return SnapshotInfo.from_summary(response.json(), sent_bytes=sent)
        raise AssertionError("unreachable")  # pragma: no cover

    def _upload_files(self, root: Path) -> tuple[list[dict[str, Any]], int]:
        entries: list[dict[str, Any]] = []
        group = _Group()
        sent = 0
        for relative, absolute, st in _walk_regular_files(root):
            entry: dict[str, Any] = {
                "path": relative,
                "mode": stat.S_IMODE(st.st_mode),
                "size": st.st_size,
                "mtime": st.st_mtime,
                "chunks": [],
            }
            entries.append(entry)
            cache_key = (st.st_size, st.st_mtime_ns, st.st_ino)
            cached = self._files_cache.get(str(absolute))
            if cached is not None and cached[0] == cache_key:
                entry["chunks"] = list(cached[1])
                group.files.append(_PendingFile(entry, absolute, cache_key, None))
                group.hashes += len(cached[1])
            else:
                fresh = self._read_file(absolute, entry)
                if fresh is None:
                    entries.pop()  # vanished
                    continue
                cacheable = time.time_ns() - st.st_mtime_ns > CACHE_MIN_AGE_NS
                group.files.append(_PendingFile(entry, absolute, cache_key if cacheable else None, fresh))
                group.raw_bytes += entry["size"]
                group.hashes += len(fresh)
            if group.raw_bytes >= GROUP_RAW_BYTES or group.hashes >= GROUP_HASHES:
                sent += self._flush(group)
                group = _Group()
        sent += self._flush(group)
        return entries, sent

    @staticmethod
    def _read_file(absolute: Path, entry: dict[str, Any]) -> list[tuple[str, bytes]] | None:
        try:
            with open(absolute, "rb") as stream:
                chunks = [(chunk_hash(data), data) for data in iter_chunks(stream)]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreClientError(0, f"reading {absolute}: {exc.strerror or exc}") from None
        entry["chunks"] = [digest for digest, _ in chunks]
        entry["size"] = sum(len(data) for _, data in chunks)  # what was read, even if the file grew since stat
        return chunks

    def _missing(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        try:
            response = self._request("POST", "/v1/chunks/missing", json={"hashes": hashes})
        except StoreClientError as exc:
            if exc.status == 413 and len(hashes) > 1:  # a store with a small --max-body-mb: ask in halves
                half = len(hashes) // 2
                return self._missing(hashes[:half]) | self._missing(hashes[half:])
            raise
        return set(response.json()["missing"])

    def _flush(self, group: _Group) -> int:
        if not group.files:
            return 0
        missing = self._missing(list(dict.fromkeys(h for f in group.files for h in f.entry["chunks"])))
        stale = [f for f in group.files if f.chunks is None and missing.intersection(f.entry["chunks"])]
        for pending in stale:
            self._files_cache.pop(str(pending.absolute), None)
            pending.chunks = self._read_file(pending.absolute, pending.entry)
            if pending.chunks is None:
                raise StoreClientError(0, f"{pending.absolute}: removed while being mirrored")
        if stale:
            missing |= self._missing(list(dict.fromkeys(h for f in stale for h in f.entry["chunks"])))
        data_by_hash: dict[str, bytes] = {}
        for pending in group.files:
            for digest, data in pending.chunks or ():
                if digest in missing:
                    data_by_hash[digest] = data
        sent = self._send_chunks(data_by_hash)
        for pending in group.files:
            if pending.cache_key is not None:
                self._files_cache[str(pending.absolute)] = (pending.cache_key, list(pending.entry["chunks"]))
        return sent

    def _send_chunks(self, data_by_hash: dict[str, bytes]) -> int:
        return self.send_frame_batches(self._frame_batches(data_by_hash))

    def _frame_batches(self, data_by_hash: dict[str, bytes]) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        batch_bytes = 0
        for digest, data in data_by_hash.items():
            frame = encode_frame(digest, self._compressor.compress(data))
            batch.append(frame)
            batch_bytes += len(frame)
            if batch_bytes >= UPLOAD_BATCH_BYTES:
                yield batch
                batch, batch_bytes = [], 0
        if batch:
            yield batch

    def send_frame_batches(self, batches: Iterable[list[bytes]]) -> int:
        """Post batches of chunk frames, ``UPLOAD_CONCURRENCY`` at a time; returns compressed bytes sent.

        Several batches in flight let the store verify one batch while another waits for its fsync,
        which is where a single stream of requests spends most of its time. Batches are produced
        (compressed) lazily in this thread, so at most ``UPLOAD_CONCURRENCY + 1`` are held in memory.
        """
        sent = 0
        in_flight: list[Future[int]] = []
        with ThreadPoolExecutor(UPLOAD_CONCURRENCY) as pool:
            try:
                for batch in batches:
                    if len(in_flight) >= UPLOAD_CONCURRENCY:
                        sent += in_flight.pop(0).result()
                    in_flight.append(pool.submit(self._post_batch, batch))
                for future in in_flight:
                    sent += future.result()
            finally:
                for future in in_flight:
                    future.cancel()
        return sent

    def _post_batch(self, frames: list[bytes]) -> int:
        body = b"".join(frames)
        try:
            self._request("POST", "/v1/chunks", content=body, headers={"Content-Type": "application/octet-stream"})
        except StoreClientError as exc:
            if exc.status == 413 and len(frames) > 1:  # a store with a small --max-body-mb: send in halves
                half = len(frames) // 2
                return self._post_batch(frames[:half]) + self._post_batch(frames[half:])
            raise
        return len(body) - HEADER.size * len(frames)

    # ------------------------------------------------------------- queries
    def latest(self, instance_id: str) -> SnapshotInfo | None:
        """The instance's newest snapshot, or None if it has none."""
        try:
            response = self._request("GET", f"/v1/instances/{instance_id}/latest")
        except StoreClientError as exc:
            if exc.status == 404 and exc.field == "instance_id":
                return None
            raise
        return SnapshotInfo.from_summary(response.json())

    def list_snapshots(self, instance_id: str) -> list[SnapshotInfo]:
        """The instance's snapshots, newest first."""
        response = self._request("GET", f"/v1/instances/{instance_id}/snapshots")
        return [SnapshotInfo.from_summary(s) for s in response.json()["snapshots"]]

    def manifest(self, snapshot_id: str) -> dict[str, Any]:
        """A snapshot's full manifest (files with chunk lists)."""
        return self._request("GET", f"/v1/snapshots/{snapshot_id}").json()

    def set_retention(self, instance_id: str, retention: Retention) -> None:
        """Change an instance's retention now (the store applies it at once)."""
        body = {"keep_last": retention.keep_last, "max_age_s": retention.max_age_s}
        self._request("PUT", f"/v1/instances/{instance_id}/retention", json=body)

    def gc(self) -> dict[str, int]:
        """Run the store's mark-and-sweep over this tenant's chunks; returns its counts."""
        return self._request("POST", "/v1/gc").json()

    def delete(self, snapshot_id: str) -> None:
        """Delete one snapshot (its unshared chunks go at the next GC)."""
        self._request("DELETE", f"/v1/snapshots/{snapshot_id}")

    # --------------------------------------------------------------- restore
    def restore(self, snapshot_id: str, into: Path) -> RestoreStats:
        """Write the snapshot's files under ``into``, verifying every chunk's blake3.

        Each file is written to a partial name and renamed when complete. A corrupt or missing chunk
        raises :class:`StoreClientError` naming the chunk, the file and the snapshot; the file being
        written is removed, so a corrupt file is never left under its real name.
        """
        started = time.perf_counter()
        manifest = self.manifest(snapshot_id)
        into = Path(into)
        into.mkdir(parents=True, exist_ok=True)
        files = manifest["files"]
        for entry in files:
            try:
                check_relative_path(entry["path"])
            except ValueError as exc:
                raise StoreClientError(0, f"snapshot {snapshot_id}: unsafe manifest: {exc}") from None
        writer = _RestoreWriter(snapshot_id, into, files)
        received = 0
        try:
            restore_url = f"/v1/snapshots/{snapshot_id}/restore"
            # identity: the frames are already compressed, and iter_raw() below must see them as sent.
            with self._http.stream("GET", restore_url, headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                buffer = bytearray()
                for block in response.iter_raw():  # no re-chunking: frames are reassembled below anyway
                    received += len(block)
                    buffer += block
                    consumed = writer.feed(buffer)
                    del buffer[:consumed]
                if buffer:
                    raise StoreClientError(0, f"snapshot {snapshot_id}: restore stream ended inside a frame")
        except httpx.HTTPError as exc:
            writer.abort()
            raise StoreClientError(0, f"snapshot {snapshot_id}: restore stream broke: {exc}") from None
        except BaseException:
            writer.abort()
            raise
        writer.finish()
        return RestoreStats(
            snapshot_id, len(files), sum(e["size"] for e in files), received, time.perf_counter() - started
        )


class _RestoreWriter:
    """Consumes restore frames in manifest order and writes files, verifying each chunk."""

    def __init__(self, snapshot_id: str, into: Path, files: list[dict[str, Any]]) -> None:
        self.snapshot_id = snapshot_id
        self.into = into
        self.files = files
        self.expected = ((i, digest) for i, entry in enumerate(files) for digest in entry["chunks"])
        self.decomp = decompressor()
        self.file_index = -1
        self.handle: Any = None
        self.partial: Path | None = None
        self.written = 0
        self._open_until(0)

    def _target(self, index: int) -> Path:
        return self.into / self.files[index]["path"]

    def _close_current(self) -> None:
        if self.handle is None:
            return
        entry = self.files[self.file_index]
        self.handle.close()
        self.handle = None
        if self.written != entry["size"]:
            raise StoreClientError(
                0,
                f"snapshot {self.snapshot_id}: file {entry['path']!r} restored {self.written} of {entry['size']} bytes",
            )
        assert self.partial is not None
        os.chmod(self.partial, entry["mode"])
        os.utime(self.partial, (entry["mtime"], entry["mtime"]))
        os.replace(self.partial, self._target(self.file_index))
        self.partial = None

    def _open_until(self, index: int) -> None:
        """Close the current file and open every file up to ``index`` (empty files have no frames)."""
        while self.file_index < index:
            self._close_current()
            self.file_index += 1
            if self.file_index >= len(self.files):
                return
            target = self._target(self.file_index)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(self.into.resolve()):
                raise StoreClientError(0, f"{target}: a symlink under {self.into} leads outside it; not restoring")
            self.partial = target.with_name(target.name + PARTIAL_SUFFIX)
            # Held across feed() calls and closed in _close_current/abort, so no `with` block fits.
            self.handle = open(self.partial, "wb")  # noqa: SIM115
            self.written = 0

    def feed(self, buffer: bytearray) -> int:
        """Handle every complete frame at the start of ``buffer``; returns the bytes consumed."""
        view = memoryview(buffer)
        offset = 0
        try:
            while len(view) - offset >= HEADER.size:
                digest_raw, length = HEADER.unpack_from(view, offset)
                end = offset + HEADER.size + length
                if end > len(view):
                    break
                payload = bytes(view[offset + HEADER.size : end])
                offset = end
                if digest_raw == ERROR_DIGEST:
                    error = json.loads(payload)
                    raise StoreClientError(500, error.get("error", "restore failed"), error.get("field", ""))
                self._write_chunk(digest_raw.hex(), payload)
        finally:
            view.release()
        return offset

    def _write_chunk(self, digest: str, payload: bytes) -> None:
        try:
            index, expected = next(self.expected)
        except StopIteration:
            raise StoreClientError(0, f"snapshot {self.snapshot_id}: restore stream has extra chunks") from None
        if digest != expected:
            raise StoreClientError(0, f"snapshot {self.snapshot_id}: stream sent chunk {digest}, expected {expected}")
        path = self.files[index]["path"]
        try:
            raw = decompress_chunk(self.decomp, payload)
        except ValueError as exc:
            raise StoreClientError(0, f"snapshot {self.snapshot_id}: chunk {digest} of {path!r}: {exc}") from None
        if chunk_hash(raw) != digest:
            raise StoreClientError(
                0, f"snapshot {self.snapshot_id}: chunk {digest} of {path!r} does not hash to its address"
            )
        self._open_until(index)
        self.handle.write(raw)
        self.written += len(raw)

    def finish(self) -> None:
        """Check the stream delivered every chunk and close the last files."""
        if next(self.expected, None) is not None:
            self.abort()
            raise StoreClientError(0, f"snapshot {self.snapshot_id}: restore stream ended early")
        self._open_until(len(self.files))

    def abort(self) -> None:
        """Remove the partially written file."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)
            self.partial = None


def _raise_for(response: httpx.Response) -> None:
    try:
        data = response.json()
        message, field_name = str(data.get("error", response.reason_phrase)), str(data.get("field", ""))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        message, field_name = f"{response.reason_phrase}: {response.text[:200]}", ""
    raise StoreClientError(response.status_code, message, field_name)
