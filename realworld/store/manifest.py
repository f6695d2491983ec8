"""The snapshot manifest: what a Mirror Store snapshot is, validated at the boundary.

A manifest is the specification's ``MirrorSnapshot {instance_id, timestamp, memory_image, process_list,
file_list}`` plus what a restore needs: the files, each as an ordered list of chunk addresses. Clients
send a :class:`CommitRequest`; the store adds the server-side fields (snapshot id, tenant, byte counts)
to make a :class:`SnapshotManifest`. Every path is checked here so that no manifest, however crafted,
can make a restore write outside its target directory.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.records import MirrorSnapshot
from realworld.store.backend import KEY_SEGMENT
from realworld.store.chunking import is_chunk_hash

MAX_PATH_CHARS = 4096
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

Identifier = Annotated[str, Field(min_length=1, max_length=128)]


def check_identifier(value: str, what: str) -> str:
    """Check an id (tenant, instance, snapshot) usable as one object-key segment.

    Raises:
        ValueError: naming ``what`` and the rule broken.
    """
    if not isinstance(value, str) or not KEY_SEGMENT.fullmatch(value):
        raise ValueError(f"{what} {value!r}: must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}")
    return value


def check_relative_path(path: str) -> str:
    """Check a file path inside a snapshot: relative, no '..' or '.' segment, no empty segment.

    Raises:
        ValueError: saying what is wrong with the path.
    """
    if not path or len(path) > MAX_PATH_CHARS:
        raise ValueError(f"path {path[:80]!r}: must be 1..{MAX_PATH_CHARS} characters")
    if _CONTROL_CHARS.search(path) or "\\" in path:
        raise ValueError(f"path {path[:80]!r}: control characters and backslashes are not allowed")
    if path.startswith("/"):
        raise ValueError(f"path {path[:80]!r}: must be relative, not absolute")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"path {path[:80]!r}: segment {segment!r} is not allowed (no '..', '.', or '//')")
    return path


def new_snapshot_id() -> str:
    """A time-sortable snapshot id: 16 hex digits of nanoseconds since the epoch, then 8 random hex."""
    return f"{time.time_ns():016x}{secrets.token_hex(4)}"


class Retention(BaseModel):
    """How many snapshots of an instance to keep: the newest ``keep_last`` and/or the younger ones.

    ``max_age_s`` bounds age. The newest snapshot is always kept, so a quiet agent never loses its only mirror.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int | None = Field(default=None, ge=1, le=1_000_000)
    max_age_s: float | None = Field(default=None, gt=0)


class FileEntry(BaseModel):
    """One regular file of a snapshot, as an ordered list of chunk addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    mode: int = Field(ge=0, le=0o7777)
    size: int = Field(ge=0)
    mtime: float
    chunks: list[str]

    @field_validator("path")
    @classmethod
    def _path_is_relative(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("chunks")
    @classmethod
    def _chunks_are_hashes(cls, value: list[str]) -> list[str]:
        for index, chunk in enumerate(value):
            if not is_chunk_hash(chunk):
                raise ValueError(f"chunks[{index}] {chunk[:80]!r}: must be 64 lowercase hex digits (blake3)")
        return value

    @model_validator(mode="after")
    def _empty_iff_no_chunks(self) -> FileEntry:
        if (self.size == 0) != (not self.chunks):
            raise ValueError(f"path {self.path!r}: size {self.size} does not fit {len(self.chunks)} chunks")
        return self


class CommitRequest(BaseModel):
    """What an agent sends to commit a snapshot of ``instance_id`` (from the URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: float = Field(ge=0)
    files: list[FileEntry]
    process_list: list[str] = Field(default_factory=list)
    file_list: list[str] | None = None
    retention: Retention | None = None

    @model_validator(mode="after")
    def _paths_unique(self) -> CommitRequest:
        seen: set[str] = set()
        prefixes: set[str] = set()
        for entry in self.files:
            if entry.path in seen:
                raise ValueError(f"path {entry.path!r}: appears twice")
            seen.add(entry.path)
            parts = entry.path.split("/")
            prefixes.update("/".join(parts[:i]) for i in range(1, len(parts)))
        clash = seen & prefixes
        if clash:
            raise ValueError(f"path {sorted(clash)[0]!r}: is both a file and a directory")
        return self


class SnapshotManifest(BaseModel):
    """A committed snapshot as the store keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot_id: str
    tenant: str
    instance_id: str
    timestamp: float
    files: list[FileEntry]
    process_list: list[str]
    file_list: list[str]
    logical_bytes: int = Field(ge=0)
    stored_bytes: int = Field(ge=0)

    @field_validator("snapshot_id", "tenant", "instance_id")
    @classmethod
    def _ids_are_key_segments(cls, value: str) -> str:
        return check_identifier(value, "id")

    def chunk_set(self) -> set[str]:
        """Every distinct chunk the snapshot references."""
        return {chunk for entry in self.files for chunk in entry.chunks}

    def to_mirror_snapshot(self, ivn: str) -> MirrorSnapshot:
        """The specification's record, as the policies see it (``memory_image`` = logical bytes)."""
        return MirrorSnapshot(
            instance_id=self.instance_id,
            timestamp=self.timestamp,
            memory_image=self.logical_bytes,
            process_list=tuple(self.process_list),
            file_list=tuple(self.file_list),
            ivn=ivn,
        )

    def summary(self) -> dict[str, object]:
        """The manifest without its per-file chunk lists (what list/latest return)."""
        return {
            "snapshot_id": self.snapshot_id,
            "instance_id": self.instance_id,
            "timestamp": self.timestamp,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "file_count": len(self.files),
            "process_list": self.process_list,
            "file_list": self.file_list,
        }
