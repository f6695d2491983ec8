"""Manifest validation: no path can leave the restore directory; ids are single safe key segments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from realworld.store.chunking import chunk_hash
from realworld.store.manifest import CommitRequest, SnapshotManifest, check_identifier, new_snapshot_id

H = chunk_hash(b"x")


def _request(path: str, **extra: object) -> dict[str, object]:
    return {"timestamp": 1.0, "files": [{"path": path, "mode": 0o644, "size": 1, "mtime": 0.0, "chunks": [H]}], **extra}


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "", "a\\..\\b", "a\x00b", "..", "a/.."]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="path"):
        CommitRequest.model_validate(_request(path))


def test_safe_nested_path_is_accepted() -> None:
    request = CommitRequest.model_validate(_request("data/dump.rdb"))
    assert request.files[0].path == "data/dump.rdb"


@pytest.mark.parametrize("value", ["..", ".", "", "a/b", "-x", ".hidden", "x" * 129, "%2e%2e", "a b"])
def test_bad_ids_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        check_identifier(value, "instance_id")


def test_bad_chunk_hash_size_mismatch_duplicates_and_unknown_fields_are_refused() -> None:
    bad_hash = _request("a")
    bad_hash["files"][0]["chunks"] = ["../../etc"]  # type: ignore[index]
    with pytest.raises(ValidationError, match="blake3"):
        CommitRequest.model_validate(bad_hash)
    empty_with_chunks = _request("a")
    empty_with_chunks["files"][0]["size"] = 0  # type: ignore[index]
    with pytest.raises(ValidationError, match="does not fit"):
        CommitRequest.model_validate(empty_with_chunks)
    twice = _request("a")
    twice["files"] = twice["files"] * 2  # type: ignore[operator]
    with pytest.raises(ValidationError, match="twice"):
        CommitRequest.model_validate(twice)
    with pytest.raises(ValidationError, match="both a file and a directory"):
        CommitRequest.model_validate(
            {"timestamp": 1, "files": [_request("a")["files"][0], _request("a/b")["files"][0]]}  # type: ignore[index]
        )
    with pytest.raises(ValidationError, match="Extra inputs"):
        CommitRequest.model_validate(_request("a", sneaky=1))


def test_manifest_maps_to_the_specification_record() -> None:
    request = CommitRequest.model_validate(_request("mem.img", process_list=["redis-server"]))
    manifest = SnapshotManifest(
        snapshot_id=new_snapshot_id(),
        tenant="ivn-b",
        instance_id="redis-1",
        timestamp=request.timestamp,
        files=request.files,
        process_list=request.process_list,
        file_list=["mem.img"],
        logical_bytes=1,
        stored_bytes=9,
    )
    record = manifest.to_mirror_snapshot("ivn-b")
    assert (record.instance_id, record.memory_image, record.ivn) == ("redis-1", 1, "ivn-b")
    assert tuple(record.process_list) == ("redis-server",)
    assert tuple(record.file_list) == ("mem.img",)


def test_snapshot_ids_sort_by_time() -> None:
    ids = [new_snapshot_id() for _ in range(50)]
    assert ids == sorted(ids)
    assert all(check_identifier(i, "snapshot_id") for i in ids)
