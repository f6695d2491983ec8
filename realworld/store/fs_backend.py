"""A crash-safe :class:`~realworld.store.backend.ObjectBackend` on a local filesystem.

Every object is one file at ``root/<key>``. A write goes to a temporary file in the destination
directory (same filesystem, so the rename is atomic), is fsync'ed, renamed over the final name and the
directory is fsync'ed: after a crash (SIGKILL or power loss) a reader finds either no object or the whole
new object, never a prefix. Temporary names start with ``.tmp-`` and can never be keys (a key segment
starts with an alphanumeric), so :meth:`FileSystemBackend.list` ignores them and
:meth:`FileSystemBackend.remove_stale_temporaries` clears those a crash left behind.

:meth:`FileSystemBackend.put_many_if_absent` is an extension the service uses when present: it writes a
whole batch of chunks, fsyncs them all, then renames them all and fsyncs each touched directory once. A
per-object fsync-then-rename costs one journal commit per chunk; batching is what lets ingest reach
disk speed (see ``docs/mirror-store.md``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from realworld.store.backend import BackendError, validate_key

TEMP_PREFIX = ".tmp-"
SYNC_THREADS = 16
_SYNC_POOL = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fdatasync")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemBackend:
    """Objects as files under ``root``; atomic, durable puts (temp file, fsync, rename, fsync dir).

    Args:
        root: Directory holding the objects; created if absent.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"store root {self.root}: cannot create ({exc.strerror or exc})") from exc
        self._made_dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._made_dirs:
            return
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            # The new directory's own entry must be durable too, or a crash could lose it and its objects.
            parent = directory
            while parent != self.root and parent.parent != parent:
                _fsync_dir(parent.parent)
                parent = parent.parent
        self._made_dirs.add(directory)

    def _write_temp(self, path: Path, data: bytes) -> tuple[int, Path]:
        self._ensure_dir(path.parent)
        temp = path.parent / f"{TEMP_PREFIX}{path.name}-{secrets.token_hex(6)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        return fd, temp

    def put(self, key: str, data: bytes) -> None:
        """Atomic, durable write of one object (replaces an existing one)."""
        path = self._path(key)
        try:
            fd, temp = self._write_temp(path, data)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise BackendError(f"put {key}: {exc.strerror or exc}") from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``key`` unless present; True if written."""
        return self.put_many_if_absent([(key, data)])[0]

    def put_many_if_absent(self, items: Iterable[tuple[str, bytes]]) -> list[bool]:
        """Write each absent key of a batch; durable for the whole batch when it returns.

        Returns:
            For each item, True if it was written, False if the key already existed (or repeated earlier
            in the batch).
        """
        pending: list[tuple[int, Path, Path]] = []
        written: list[bool] = []
        claimed: set[Path] = set()
        try:
            for key, data in items:
                path = self._path(key)
                if path in claimed or path.exists():
                    written.append(False)
                    continue
                fd, temp = self._write_temp(path, data)
                pending.append((fd, temp, path))
                claimed.add(path)
                written.append(True)
            # Concurrent fdatasyncs let the filesystem group them into a few journal commits instead of one
            # commit per chunk (the calls release the GIL while the disk works).
            list(_SYNC_POOL.map(os.fdatasync, [fd for fd, _, _ in pending]))
            directories: set[Path] = set()
            for fd, temp, path in pending:
                os.close(fd)
                # link() rather than rename(): it fails if a concurrent writer got there first, so an
                # existing (immutable) object is never replaced.
                with contextlib.suppress(FileExistsError):
                    os.link(temp, path)
                os.unlink(temp)
                directories.add(path.parent)
            pending = []
            for directory in directories:
                _fsync_dir(directory)
        except OSError as exc:
            for fd, temp, _ in pending:
                with contextlib.suppress(OSError):
                    os.close(fd)
                temp.unlink(missing_ok=True)
            raise BackendError(f"put batch under {self.root}: {exc.strerror or exc}") from exc
        return written

    def get(self, key: str) -> bytes:
        """The object's bytes; KeyError if absent."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise BackendError(f"get {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object (durably); absent is fine."""
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackendError(f"delete {key}: {exc.strerror or exc}") from exc
        _fsync_dir(path.parent)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several objects, fsyncing each touched directory once (GC sweeps thousands)."""
        directories: set[Path] = set()
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise BackendError(f"delete {key}: {exc.strerror or exc}") from exc
            directories.add(path.parent)
        for directory in directories:
            _fsync_dir(directory)

    def list(self, prefix: str) -> Iterator[str]:
        """All keys starting with ``prefix``, sorted; temporaries are never listed."""
        base = self.root
        # Walk only the deepest directory the prefix fully names, not the whole store.
        head, _, _ = prefix.rpartition("/")
        start = base / head if head else base
        if head:
            validate_key(head)
        keys: list[str] = []
        if start.is_dir():
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = os.path.relpath(dirpath, base)
                for name in filenames:
                    if name.startswith("."):
                        continue
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix):
                        keys.append(key)
        return iter(sorted(keys))

    def size(self, key: str) -> int:
        """Stored size in bytes; KeyError if absent."""
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise KeyError(key) from None

    def remove_stale_temporaries(self) -> int:
        """Delete temporaries left by a crash mid-write; returns how many. Call before serving."""
        count = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    (Path(dirpath) / name).unlink(missing_ok=True)
                    count += 1
        return count
