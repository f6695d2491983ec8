"""What the agent needs from a Mirror Store client: upload one captured directory as a snapshot.

The real implementation is ``realworld.store.client.MirrorStoreClient`` (chunking with fastcdc, zstd,
blake3 addresses; only chunks the store lacks are sent). The agent codes against this Protocol only, so
tests use ``tests.fakes.fake_snapshot_uploader.FakeSnapshotUploader`` and the bench can swap in the real
client.

:class:`Retention` and :class:`SnapshotInfo` are the store client's records, re-exported here so the
agent's code and its fakes name one type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from realworld.store.client import Retention, SnapshotInfo

__all__ = ["Retention", "SnapshotInfo", "SnapshotUploader"]


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
