"""The binary framing of chunk uploads and restore streams, shared by the store and its client.

A frame is ``32-byte raw blake3 digest | 4-byte big-endian length | payload`` where the payload is the
zstd-compressed chunk. Many frames in one request body is what makes upload fast: one HTTP round trip
and one batched fsync per few MiB instead of per chunk. In a restore stream an all-zero digest marks an
*error frame* whose payload is a JSON ``{"error": ..., "field": ...}``: the HTTP status (200) is already
sent when a corrupt chunk is found mid-stream, so the error must travel in-band.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

DIGEST_BYTES = 32
HEADER = struct.Struct(">32sI")
ERROR_DIGEST = bytes(DIGEST_BYTES)


class FrameError(ValueError):
    """A frame stream is malformed (truncated header or payload); the message says where."""


def encode_frame(chunk_hash_hex: str, payload: bytes) -> bytes:
    """One frame for the chunk with address ``chunk_hash_hex`` and compressed ``payload``."""
    return HEADER.pack(bytes.fromhex(chunk_hash_hex), len(payload)) + payload


def encode_error_frame(message: str, field: str) -> bytes:
    """An in-band error frame (restore streams)."""
    payload = json.dumps({"error": message, "field": field}).encode()
    return HEADER.pack(ERROR_DIGEST, len(payload)) + payload


def decode_frames(body: bytes | memoryview) -> Iterator[tuple[str, memoryview]]:
    """(hex address, compressed payload view) of each frame of a complete body.

    Raises:
        FrameError: the body ends inside a header or payload (names the frame index and offset).
    """
    view = memoryview(body)
    offset = 0
    index = 0
    while offset < len(view):
        if len(view) - offset < HEADER.size:
            raise FrameError(f"frame {index} at byte {offset}: truncated header")
        digest, length = HEADER.unpack_from(view, offset)
        start = offset + HEADER.size
        end = start + length
        if end > len(view):
            raise FrameError(f"frame {index} at byte {offset}: payload of {length} bytes is truncated")
        yield digest.hex(), view[start:end]
        offset = end
        index += 1
