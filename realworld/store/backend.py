"""The object-backend port of the Mirror Store: where its bytes live, by key.

The store logic (:mod:`realworld.store.service`) only ever talks to an :class:`ObjectBackend`, so the
same service runs over a local filesystem (:mod:`realworld.store.fs_backend`) or an S3-compatible
bucket (``realworld.store.s3_backend``). Keys are validated here, once, by both backends, because a key
is built from request data (tenant, instance and snapshot ids, chunk hashes) and must never be able to
name anything outside the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

#: One key segment: starts with an alphanumeric (so never '.' or '..', never a hidden/temp name),
#: then up to 127 of ``[A-Za-z0-9._-]``.
KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BackendError(Exception):
    """A backend operation failed (I/O, network, permissions); message says which key."""


class ObjectBackend(Protocol):
    """Where a Mirror Store keeps bytes: immutable chunk objects and small manifest objects, by key.

    Keys are '/'-separated; every segment matches [A-Za-z0-9][A-Za-z0-9._-]{0,127} (no '..', no empty segment).
    """

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; atomic and durable when it returns (old or new whole object)."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` unless ``key`` exists; True if written (chunks are immutable, content-addressed)."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ``KeyError(key)`` if absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; an absent key is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """All keys starting with ``prefix``, sorted."""
        ...

    def size(self, key: str) -> int:
        """Stored size in bytes; raises ``KeyError(key)`` if absent."""
        ...


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe object key and return it unchanged.

    Raises:
        ValueError: naming the first bad segment (empty, '..', absolute, or outside the allowed alphabet).
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"object key {key!r}: must be a non-empty string")
    for segment in key.split("/"):
        if not KEY_SEGMENT.fullmatch(segment):
            raise ValueError(f"object key {key!r}: segment {segment!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}")
    return key
