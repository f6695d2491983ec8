"""Just enough of the Redis protocol (RESP2) for health probes and replication catch-up.

Why not redis-py: it is a test-only dependency of this project, and the live adapters need four
commands (``PING``, ``REPLICAOF``, ``INFO replication``, ``ROLE``), which fit in a page.
"""

from __future__ import annotations

import socket
import time
from typing import BinaryIO

RespValue = str | int | bytes | list["RespValue"] | None


class RedisProtocolError(RuntimeError):
    """A Redis server answered an error or something that is not RESP; the message names the command."""


def redis_command(address: str, port: int, *args: str | bytes, timeout_s: float = 5.0) -> RespValue:
    """Send one command on a fresh connection and return the decoded reply.

    Raises:
        RedisProtocolError: When the server answers ``-ERR ...`` (naming the command) or breaks RESP.
        OSError: When the server cannot be reached.
    """
    parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    with socket.create_connection((address, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        reader = sock.makefile("rb")
        return _parse(reader, " ".join(part.decode(errors="replace") for part in parts[:2]))


def _parse(reader: BinaryIO, command: str) -> RespValue:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise RedisProtocolError(f"Redis command {command!r}: connection closed mid-reply")
    kind, payload = line[:1], line[1:-2]
    if kind == b"+":
        return payload.decode()
    if kind == b"-":
        raise RedisProtocolError(f"Redis command {command!r} failed: {payload.decode(errors='replace')}")
    if kind == b":":
        return int(payload)
    if kind == b"$":
        length = int(payload)
        if length < 0:
            return None
        data = reader.read(length + 2)
        return data[:-2]
    if kind == b"*":
        count = int(payload)
        return None if count < 0 else [_parse(reader, command) for _ in range(count)]
    raise RedisProtocolError(f"Redis command {command!r}: not a RESP reply: {line[:40]!r}")


def ping(address: str, port: int, timeout_s: float = 2.0) -> bool:
    """Return whether the server answers ``PING`` with ``PONG`` (its health probe)."""
    try:
        return redis_command(address, port, "PING", timeout_s=timeout_s) == "PONG"
    except (OSError, RedisProtocolError):
        return False


def replication_info(address: str, port: int) -> dict[str, str]:
    """Return ``INFO replication`` as a dictionary."""
    raw = redis_command(address, port, "INFO", "replication")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def replicate_until_in_sync(
    source: tuple[str, int], replica: tuple[str, int], *, timeout_s: float = 60.0, poll_s: float = 0.05
) -> int:
    """Make ``replica`` follow ``source`` and wait until it has applied everything the source had.

    "In sync" means the link is up and the replica's processed offset has reached the source's offset
    as read *after* the link came up; writes keep streaming afterwards, so the replica stays current
    until it is promoted (:func:`promote`) at the switch.

    Returns:
        The replication offset reached.

    Raises:
        TimeoutError: When the replica is not in sync within ``timeout_s`` (with the last state seen).
    """
    redis_command(*replica, "REPLICAOF", source[0], str(source[1]))
    deadline = time.monotonic() + timeout_s
    state: dict[str, str] = {}
    target: int | None = None
    while time.monotonic() < deadline:
        state = replication_info(*replica)
        if state.get("master_link_status") == "up":
            if target is None:
                target = int(replication_info(*source).get("master_repl_offset", "0"))
            reached = int(state.get("slave_repl_offset", "-1"))
            if reached >= target:
                return reached
        time.sleep(poll_s)
    raise TimeoutError(
        f"replica {replica[0]}:{replica[1]} not in sync with {source[0]}:{source[1]} after {timeout_s:g} s "
        f"(link {state.get('master_link_status', '?')}, offset {state.get('slave_repl_offset', '?')}, target {target})"
    )


def promote(address: str, port: int) -> None:
    """Stop replicating and accept writes (``REPLICAOF NO ONE``): the replica becomes the writer."""
    redis_command(address, port, "REPLICAOF", "NO", "ONE")


def pause_writes(address: str, port: int, pause_ms: int) -> None:
    """Hold every write command on the server for up to ``pause_ms`` (``CLIENT PAUSE ... WRITE``).

    Reads go on; writes block (they are not refused), so a client sees latency, not errors, while the
    replica takes over.
    """
    redis_command(address, port, "CLIENT", "PAUSE", str(pause_ms), "WRITE")


def wait_until_level(source: tuple[str, int], replica: tuple[str, int], *, timeout_s: float = 10.0) -> int:
    """Wait until ``replica`` has processed everything ``source`` has (call with source writes paused).

    Returns:
        The common offset.

    Raises:
        TimeoutError: When the replica does not reach the source's offset in time.
    """
    target = int(replication_info(*source).get("master_repl_offset", "0"))
    deadline = time.monotonic() + timeout_s
    reached = -1
    while time.monotonic() < deadline:
        state = replication_info(*replica)
        reached = int(state.get("slave_repl_offset", "-1"))
        if state.get("master_link_status") == "up" and reached >= target:
            return reached
        time.sleep(0.005)
    raise TimeoutError(
        f"replica {replica[0]}:{replica[1]} at offset {reached}, source at {target} after {timeout_s:g} s"
    )
