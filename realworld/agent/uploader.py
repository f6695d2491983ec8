"""What the agent needs from a Mirror Store client: upload one captured directory as a snapshot.

The real implementation is ``realworld.store.client.MirrorStoreClient`` (chunking with fastcdc, zstd,
blake3 addresses; only chunks the store lacks are sent). The agent codes against this Protocol only, so
tests use ``tests.fakes.fake_snapshot_uploader.FakeSnapshotUploader`` and the bench can swap in the real
client.

:class:`Retention` and :class:`SnapshotInfo` are defined here until the store branch lands; the store's
client module defines the same two records with the same fields, and the two are unified at merge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Retention:
    """How many snapshots of an instance the store keeps; ``None`` means no limit of that kind.

    Attributes:
        keep_last: Keep at most this many most recent snapshots (>= 1).
        max_age_s: Drop snapshots older than this (s, > 0); the latest is always kept.
    """

    keep_last: int | None = None
    max_age_s: float | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and (isinstance(self.keep_last, bool) or self.keep_last < 1):
            raise ValueError(f"keep_last: must be an integer >= 1, got {self.keep_last!r}")
        if self.max_age_s is not None and not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise ValueError(f"max_age_s: must be a finite number > 0, got {self.max_age_s!r}")


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What the store reports about a committed snapshot.

    Attributes:
        snapshot_id: The store's id of the snapshot.
        instance_id: The instance mirrored.
        timestamp: Capture time (epoch s).
        logical_bytes: Size of the captured files before dedup and compression.
        stored_bytes: Bytes the store holds for this snapshot's new chunks.
        sent_bytes: Bytes sent over the wire for this snapshot.
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


class SnapshotUploader(Protocol):
    """Uploads a directory as one snapshot of an instance and returns what was committed."""

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
        """Upload every file under ``root`` and commit the snapshot; raises on failure (nothing committed)."""
        ...
