"""Content-defined chunking, content addresses and compression shared by the store and its client.

Choices, and why:

* **FastCDC, min 32 KiB / avg 128 KiB / max 512 KiB** (``fastcdc``'s Cython implementation). Boundaries
  depend on content, so an insertion shifts data without changing the chunks after it. The average is a
  measured balance: smaller chunks dedup a scattered page rewrite better (a dirty 4 KiB page costs one
  chunk), but every chunk is one object, one fsync'ed file and one journal entry in the store, and the
  per-object cost dominates ingest. Interleaved runs of the store's ingest on this machine gave about
  110 MB/s at a 64 KiB average, 175 MB/s at 128 KiB and 270 MB/s at 256 KiB (target 150). 128 KiB
  meets the target and still dedups mutating memory-like state far better than borg's default
  (512 KiB min, 2 MiB average), which rewrites a whole 2 MiB chunk per dirty page (see
  ``bench/bench_store.py`` and ``bench/RESULTS.md``).
* **blake3** of the *uncompressed* chunk, hex: the address is a property of the content, independent of
  compression level, and blake3 hashes at GB/s, so verifying on arrival and on restore is cheap.
* **zstd level 1** (``zstandard``): on the bench's memory-like state, level 3 stores 0.3 % fewer bytes
  (ratio 0.652 vs 0.654) and compresses 35 % slower (526 vs 810 MB/s on one core), so level 1: the agent
  compresses every new chunk within its CPU budget. Frames carry their content size, so the store can
  refuse a frame claiming more than a maximum chunk before decompressing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import blake3
import zstandard
from fastcdc import fastcdc as _fastcdc

MIN_CHUNK_BYTES = 32 * 1024
AVG_CHUNK_BYTES = 128 * 1024
MAX_CHUNK_BYTES = 512 * 1024
ZSTD_LEVEL = 1
#: How much of a stream is chunked at once; the last chunk of each window is carried into the next, so
#: boundaries are the same as for the whole file read at once.
READ_WINDOW_BYTES = 16 * 1024 * 1024
HASH_HEX_LENGTH = 64
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")

if "cy" not in getattr(_fastcdc, "__name__", ""):  # pragma: no cover - depends on the installed wheel
    raise ImportError("fastcdc's Cython extension is not available; the pure-Python chunker is far too slow")


def chunk_hash(data: bytes | memoryview) -> str:
    """The content address of a chunk: blake3 hex digest of its uncompressed bytes."""
    return blake3.blake3(data).hexdigest()


def chunk_boundaries(data: bytes | memoryview) -> list[tuple[int, int]]:
    """(offset, length) of each content-defined chunk of ``data`` (one buffer)."""
    if not len(data):
        return []
    return [(c.offset, c.length) for c in _fastcdc(data, MIN_CHUNK_BYTES, AVG_CHUNK_BYTES, MAX_CHUNK_BYTES)]


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Chunk a stream window by window with bounded memory; same boundaries as one whole buffer.

    The last chunk of each window may have been cut by the window's end rather than by content, so it
    is carried over and re-chunked together with the next window.
    """
    carry = b""
    while True:
        block = stream.read(READ_WINDOW_BYTES)
        data = carry + block if carry else block
        if not block:
            if data:
                for offset, length in chunk_boundaries(data):
                    yield data[offset : offset + length]
            return
        bounds = chunk_boundaries(data)
        for offset, length in bounds[:-1]:
            yield data[offset : offset + length]
        last_offset = bounds[-1][0]
        carry = data[last_offset:]


def is_chunk_hash(text: str) -> bool:
    """Whether ``text`` is a well-formed content address (64 lowercase hex digits)."""
    return isinstance(text, str) and HASH_PATTERN.fullmatch(text) is not None


def compressor() -> zstandard.ZstdCompressor:
    """A zstd compressor at the store's level (not thread-safe: one per thread)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)


def decompressor() -> zstandard.ZstdDecompressor:
    """A zstd decompressor (not thread-safe: one per thread)."""
    return zstandard.ZstdDecompressor()


def decompress_chunk(decomp: zstandard.ZstdDecompressor, data: bytes) -> bytes:
    """Decompress one stored chunk, refusing frames that claim more than a maximum chunk.

    Raises:
        ValueError: the frame is not zstd, has no content size, or claims to be larger than a chunk.
    """
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise ValueError(f"not a zstd frame ({exc})") from None
    if size < 0 or size > MAX_CHUNK_BYTES:
        raise ValueError(f"zstd frame content size {size} outside 0..{MAX_CHUNK_BYTES}")
    try:
        return decomp.decompress(data, max_output_size=MAX_CHUNK_BYTES)
    except zstandard.ZstdError as exc:
        raise ValueError(f"corrupt zstd frame ({exc})") from None
