"""An in-memory stand-in for the Mirror Store client: records every upload and the files' bytes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from realworld.agent.uploader import Retention, SnapshotInfo


@dataclass
class RecordedUpload:
    """One ``upload_directory`` call as the fake saw it."""

    instance_id: str
    timestamp: float
    files: dict[str, bytes]
    process_list: tuple[str, ...]
    file_list: tuple[str, ...] | None
    retention: Retention | None


@dataclass
class FakeSnapshotUploader:
    """Implements ``SnapshotUploader`` without chunking anything.

    Attributes:
        uploads: Every successful call, oldest first, with the bytes of every file under ``root``.
        calls: Number of calls, failed ones included.
        fail_next: Raise ``ConnectionError`` on this many upcoming calls (then succeed again).
        release: When given, each call waits (at most 30 s) until it is set, holding the upload "in flight".
        keep_bytes: Read and keep file contents (off for the bench, where 256 MB a call is too much).
        entered: Set when a call starts (tests wait on it instead of sleeping).
    """

    uploads: list[RecordedUpload] = field(default_factory=list)
    calls: int = 0
    fail_next: int = 0
    release: threading.Event | None = None
    keep_bytes: bool = True
    entered: threading.Event = field(default_factory=threading.Event)

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
        self.calls += 1
        self.entered.set()
        if self.release is not None:
            self.release.wait(30)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("fake store unreachable")
        paths = sorted(p for p in root.rglob("*") if p.is_file())
        files = {str(p.relative_to(root)): (p.read_bytes() if self.keep_bytes else b"") for p in paths}
        logical = sum(p.stat().st_size for p in paths)
        self.uploads.append(
            RecordedUpload(
                instance_id,
                timestamp,
                files,
                tuple(process_list),
                None if file_list is None else tuple(file_list),
                retention,
            )
        )
        return SnapshotInfo(
            snapshot_id=f"{instance_id}-{len(self.uploads)}",
            instance_id=instance_id,
            timestamp=timestamp,
            logical_bytes=logical,
            stored_bytes=logical,
            sent_bytes=logical,
            file_count=len(paths),
            process_list=tuple(process_list),
            file_list=tuple(file_list or ()),
        )
