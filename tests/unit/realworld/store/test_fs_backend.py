"""FileSystemBackend: key safety, atomic puts, no partial object visible after a failed write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from realworld.store.backend import BackendError, validate_key
from realworld.store.fs_backend import TEMP_PREFIX, FileSystemBackend


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "a/.tmp-x", "a/b c", "a/" + "x" * 129])
def test_bad_keys_are_refused_naming_the_segment(key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        validate_key(key)


def test_put_get_list_delete_size(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path / "store")
    backend.put("t/a/s/i1/one", b"1")
    backend.put("t/a/s/i1/one", b"11")
    assert backend.get("t/a/s/i1/one") == b"11"
    assert backend.put_if_absent("t/a/c/h1", b"chunk") is True
    assert backend.put_if_absent("t/a/c/h1", b"other") is False
    assert backend.get("t/a/c/h1") == b"chunk"
    assert backend.size("t/a/c/h1") == 5
    assert list(backend.list("t/a/")) == ["t/a/c/h1", "t/a/s/i1/one"]
    assert list(backend.list("t/a/s/")) == ["t/a/s/i1/one"]
    assert list(backend.list("t/zz/")) == []
    backend.delete("t/a/c/h1")
    backend.delete("t/a/c/h1")
    assert not backend.exists("t/a/c/h1")
    with pytest.raises(KeyError):
        backend.get("t/a/c/h1")
    with pytest.raises(KeyError):
        backend.size("t/a/c/h1")


def test_failed_batch_leaves_no_partial_object_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FileSystemBackend(tmp_path)
    backend.put_many_if_absent([("c/warm", b"w")])
    calls = {"n": 0}
    real_link = os.link

    def failing_link(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(BackendError, match="No space left"):
        backend.put_many_if_absent([("c/a", b"a" * 1000), ("c/b", b"b" * 1000), ("c/c", b"c" * 1000)])
    # Whatever is visible is whole; nothing half-written, no temporaries left behind.
    for key in backend.list("c/"):
        assert backend.get(key) in (b"w", b"a" * 1000)
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.rglob("*"))


def test_crash_leftover_temporaries_are_invisible_and_removed(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    backend.put("c/real", b"r")
    (tmp_path / "c" / f"{TEMP_PREFIX}half-abc").write_bytes(b"partial")
    assert list(backend.list("c/")) == ["c/real"]
    assert backend.remove_stale_temporaries() == 1
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["real"]


def test_unwritable_root_is_a_backend_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(BackendError, match="cannot create"):
        FileSystemBackend(blocker / "store")
