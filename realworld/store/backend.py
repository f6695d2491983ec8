"""The object-backend port of the live Mirror Store and the key rule every backend enforces.

The Mirror Store keeps two kinds of objects: immutable, content-addressed chunks and small manifests.
Both the filesystem backend and the S3-compatible backend implement :class:`ObjectBackend`, so the
store (and one contract test suite) can treat them alike. Keys are validated by :func:`validate_key`
*before* any I/O, in every backend, so a bad key can never escape the store's directory or bucket
prefix (``..``, absolute paths) and means the same thing on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

KEY_SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""One '/'-separated key segment: starts with a letter or digit (so never '.', '..' or a hidden name)."""

#: The same rule under the name the store's identifier checks use.
KEY_SEGMENT = KEY_SEGMENT_PATTERN


class BackendError(Exception):
    """A backend operation failed (I/O, network, permissions); message says which key."""


class ObjectBackend(Protocol):
    """Where a Mirror Store keeps bytes: immutable chunk objects and small manifest objects, by key.

    Keys are '/'-separated; every segment matches [A-Za-z0-9][A-Za-z0-9._-]{0,127} (no '..', no empty segment).
    """

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous object.

        Atomic and durable when it returns: a reader sees the old or the new whole object, never a
        partial one, so a crash mid-write cannot leave a torn manifest behind.
        """
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` only if ``key`` does not exist yet.

        Returns True if written, False if the key already existed. Chunks are immutable and
        content-addressed, so a second writer of the same key has nothing new to add.
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the whole object; raises ``KeyError(key)`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error, so retention sweeps can be retried safely."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Yield all keys starting with ``prefix``, sorted, so listings are deterministic across backends."""
        ...

    def size(self, key: str) -> int:
        """Stored size in bytes; raises ``KeyError(key)`` if absent."""
        ...


def validate_key(key: str) -> str:
    """Check that ``key`` is a well-formed object key and return it unchanged.

    Why: every backend maps keys onto something with path semantics (a directory tree, an S3 prefix);
    rejecting '..', empty segments, absolute keys and unusual characters up front keeps one store
    from reading or writing outside its own space and makes keys portable between backends.

    Raises:
        ValueError: naming the bad segment (or saying the key is empty / not a string).
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a string, got {type(key).__name__}")
    if not key:
        raise ValueError("object key is empty")
    for position, segment in enumerate(key.split("/")):
        if not KEY_SEGMENT_PATTERN.fullmatch(segment):
            raise ValueError(
                f"object key {key!r}: segment {position} ({segment!r}) must match "
                f"{KEY_SEGMENT_PATTERN.pattern} (no '..', no empty segment, no leading '/')"
            )
    return key
