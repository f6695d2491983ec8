"""Content-defined chunking: boundaries survive insertions; streams chunk like whole buffers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from realworld.store.chunking import (
    MAX_CHUNK_BYTES,
    READ_WINDOW_BYTES,
    chunk_boundaries,
    chunk_hash,
    compressor,
    decompress_chunk,
    decompressor,
    is_chunk_hash,
    iter_chunks,
)


def _hashes(data: bytes) -> list[str]:
    return [chunk_hash(data[o : o + n]) for o, n in chunk_boundaries(data)]


def test_one_byte_insert_changes_few_chunks() -> None:
    data = np.random.default_rng(1).bytes(16 * 1024 * 1024)
    edited = data[:6_000_000] + b"x" + data[6_000_000:]
    before, after = _hashes(data), _hashes(edited)
    changed = len(set(after) - set(before))
    assert len(before) > 60
    assert changed <= 3, f"{changed} of {len(after)} chunks changed after a 1-byte insert"


def test_chunks_cover_the_data_within_size_limits() -> None:
    data = np.random.default_rng(2).bytes(3 * 1024 * 1024 + 17)
    bounds = chunk_boundaries(data)
    assert bounds[0][0] == 0
    assert sum(n for _, n in bounds) == len(data)
    assert all(n <= MAX_CHUNK_BYTES for _, n in bounds)
    assert chunk_boundaries(b"") == []


def test_stream_chunking_matches_whole_buffer_across_windows() -> None:
    data = np.random.default_rng(3).bytes(READ_WINDOW_BYTES * 2 + 12345)
    streamed = [chunk_hash(c) for c in iter_chunks(io.BytesIO(data))]
    assert streamed == _hashes(data)
    assert list(iter_chunks(io.BytesIO(b""))) == []


def test_compressed_chunk_round_trips_and_garbage_is_refused() -> None:
    raw = b"mirror" * 5000
    frame = compressor().compress(raw)
    assert decompress_chunk(decompressor(), frame) == raw
    with pytest.raises(ValueError, match="zstd"):
        decompress_chunk(decompressor(), b"not a zstd frame at all")
    too_big = compressor().compress(b"\0" * (MAX_CHUNK_BYTES + 1))
    with pytest.raises(ValueError, match="content size"):
        decompress_chunk(decompressor(), too_big)


def test_hash_format() -> None:
    assert is_chunk_hash(chunk_hash(b"abc"))
    assert not is_chunk_hash("../" + "a" * 61)
    assert not is_chunk_hash("A" * 64)
