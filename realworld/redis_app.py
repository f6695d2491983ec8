"""Redis as a migratable stateful instance: restore, catch-up, health and the writer cut-over.

The migration workflow is generic: restore a replacement from the mirror, shift traffic step by step,
check health, redirect or roll back. A *stateful single-writer* service needs three app-specific
pieces to do that without losing an acknowledged write, and this module supplies them for Redis
(Debian ``redis-server`` 7):

* **catch-up**: the replacement starts from the mirror snapshot (an RDB written by ``BGSAVE``, the
  agent's ``hook`` capture) and then replicates from the source (``REPLICAOF``) until its offset
  equals the source's — only writes made since the snapshot cross, when the source's backlog allows a
  partial resync (otherwise Redis falls back to a full one; :func:`sync_kind` says which happened);
* **read/write split**: during the progressive shift only *reads* move (the replacement is an in-sync
  replica); writes keep going to the single writer, because two writers would diverge;
* **cut-over** (:class:`RedisCutover`, the load balancer's redirect hook): pause writes on the source
  (``CLIENT PAUSE WRITE``: writers block, they do not fail), wait until the replica has every write,
  promote it (``REPLICAOF NO ONE``), switch the load balancer, make the source a replica of the new
  writer and unpause it. A write that was blocked on the source is then refused (``READONLY``) or its
  connection is cut by the load balancer — never applied to the old writer — and the client's retry
  lands on the new one. So every acknowledged write is on the new writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)


class RedisMigrationError(Exception):
    """A Redis step of a migration failed; the message names the server and the step."""


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where one Redis server listens."""

    host: str
    port: int

    def client(self, timeout_s: float = 2.0) -> redis.Redis:
        """A client with bounded timeouts (a migration step must never hang)."""
        return redis.Redis(self.host, self.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def replication_info(endpoint: RedisEndpoint) -> dict[str, object]:
    """``INFO replication`` of ``endpoint`` as a dict."""
    try:
        return dict(endpoint.client().info("replication"))
    except redis.RedisError as exc:
        raise RedisMigrationError(f"redis {endpoint}: INFO replication failed: {exc}") from None


def is_healthy(endpoint: RedisEndpoint, *, timeout_s: float = 1.0) -> bool:
    """The health probe: the server answers ``PING`` within ``timeout_s``."""
    try:
        return bool(endpoint.client(timeout_s).ping())
    except redis.RedisError:
        return False


def catch_up(source: RedisEndpoint, replica: RedisEndpoint, *, timeout_s: float = 30.0, poll_s: float = 0.02) -> None:
    """Make ``replica`` replicate ``source`` and return once it holds every write the source has.

    Raises:
        RedisMigrationError: The link did not come up or the offsets did not meet within ``timeout_s``.
    """
    try:
        replica.client().execute_command("REPLICAOF", source.host, str(source.port))
    except redis.RedisError as exc:
        raise RedisMigrationError(f"redis {replica}: REPLICAOF {source} failed: {exc}") from None
    wait_in_sync(source, replica, timeout_s=timeout_s, poll_s=poll_s)


def wait_in_sync(source: RedisEndpoint, replica: RedisEndpoint, *, timeout_s: float, poll_s: float = 0.005) -> int:
    """Wait until ``replica``'s link to ``source`` is up and its offset reached the source's; returns it."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        target = int(replication_info(source).get("master_repl_offset", -1))  # type: ignore[call-overload]
        last = replication_info(replica)
        if last.get("master_link_status") == "up" and int(last.get("slave_repl_offset", -2)) >= target >= 0:  # type: ignore[call-overload]
            return target
        time.sleep(poll_s)
    raise RedisMigrationError(
        f"redis {replica}: not in sync with {source} after {timeout_s:g} s "
        f"(link {last.get('master_link_status')}, offset {last.get('slave_repl_offset')})"
    )


def sync_kind(source: RedisEndpoint) -> str:
    """``partial``, ``full`` or ``none``: how the source has served its replicas so far (``INFO stats``)."""
    try:
        stats = source.client().info("stats")
    except redis.RedisError as exc:
        raise RedisMigrationError(f"redis {source}: INFO stats failed: {exc}") from None
    if int(stats.get("sync_full", 0)):
        return "full"
    if int(stats.get("sync_partial_ok", 0)):
        return "partial"
    return "none"


@dataclass
class CutoverRecord:
    """What one cut-over did, for reports.

    Attributes:
        source: The old writer.
        replica: The new writer.
        paused_s: How long writes were paused on the source (the only write-unavailability window).
        offset: Replication offset at which the writer changed.
    """

    source: str
    replica: str
    paused_s: float
    offset: int


class RedisCutover:
    """The load balancer's redirect hook for Redis: move the single writer with no acknowledged write lost.

    Args:
        endpoints: Returns the Redis endpoint of a backend id (source or replacement).
        pause_ms: Upper bound of the write pause; Redis lifts it by itself after this, so a crashed
            controller cannot leave the source paused forever.
        sync_timeout_s: How long to wait for the replica to reach the source's offset while paused.
    """

    def __init__(
        self, endpoints: Callable[[str], RedisEndpoint], *, pause_ms: int = 5_000, sync_timeout_s: float = 4.0
    ) -> None:
        self._endpoints = endpoints
        self.pause_ms = pause_ms
        self.sync_timeout_s = sync_timeout_s
        self.records: list[CutoverRecord] = []

    def __call__(self, instance_id: str, replacement_id: str, switch: Callable[[], None]) -> None:
        """Pause writes, let the replica catch up, promote it, ``switch()`` the LB, demote and unpause."""
        source = self._endpoints(instance_id)
        replica = self._endpoints(replacement_id)
        src = source.client()
        started = time.monotonic()
        try:
            src.execute_command("CLIENT", "PAUSE", str(self.pause_ms), "WRITE")
        except redis.RedisError as exc:
            raise RedisMigrationError(f"redis {source}: CLIENT PAUSE failed: {exc}") from None
        try:
            offset = wait_in_sync(source, replica, timeout_s=self.sync_timeout_s)
            replica.client().execute_command("REPLICAOF", "NO", "ONE")
        except (redis.RedisError, RedisMigrationError) as exc:
            self._unpause(src, source)
            raise RedisMigrationError(f"cut-over {source} -> {replica} failed before the switch: {exc}") from None
        try:
            switch()
        finally:
            try:
                src.execute_command("REPLICAOF", replica.host, str(replica.port))
            except redis.RedisError as exc:  # the source is decommissioned next anyway; say so
                log.warning("redis %s: could not make it a replica of %s: %s", source, replica, exc)
            self._unpause(src, source)
        self.records.append(CutoverRecord(str(source), str(replica), time.monotonic() - started, offset))

    @staticmethod
    def _unpause(client: redis.Redis, endpoint: RedisEndpoint) -> None:
        try:
            client.execute_command("CLIENT", "UNPAUSE")
        except redis.RedisError as exc:
            log.warning("redis %s: CLIENT UNPAUSE failed (the pause expires by itself): %s", endpoint, exc)
