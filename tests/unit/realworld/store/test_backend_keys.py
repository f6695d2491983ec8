"""The key rule both Mirror Store backends enforce before any I/O."""

from __future__ import annotations

import pytest

from realworld.store.backend import validate_key


@pytest.mark.parametrize(
    "key", ["a", "chunks/ab/abcdef0123", "manifests/vm-1/2026-11-28T10.00.00", "A_b.c-d/0", "x" * 128]
)
def test_well_formed_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "named_segment"),
    [
        ("chunks/../etc", "'..'"),
        ("/etc/passwd", "segment 0 ('')"),
        ("a//b", "segment 1 ('')"),
        ("a/", "segment 1 ('')"),
        ("a/.git", "'.git'"),
        ("a/b c", "'b c'"),
        ("a/" + "y" * 129, "segment 1"),
    ],
)
def test_bad_keys_raise_value_error_naming_the_segment(key: str, named_segment: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_key(key)
    assert named_segment in str(raised.value)


@pytest.mark.parametrize("key", ["", None, b"bytes"])
def test_empty_or_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(ValueError, match="key"):
        validate_key(key)  # type: ignore[arg-type]
