"""The redirect hook for Redis: switch the writer at the exact moment the load balancer switches.

A Redis replacement follows its source by replication until the redirect. Switching traffic while the
source still accepts writes would lose the writes acknowledged in between, so the hook:

1. pauses writes on the source (``CLIENT PAUSE WRITE``: writers block, nobody gets an error);
2. waits until the replica has processed the source's last offset;
3. promotes the replica (``REPLICAOF NO ONE``);
4. calls the load balancer's switch (all weight to the replica, the source drained and its client
   connections cut, so clients reconnect to the new writer).

A write blocked on the paused source when step 4 cuts its connection is never acknowledged: the client
sees a connection error and retries through HAProxy, which now leads to the new writer. So no
acknowledged write is lost. The pause must outlast steps 2-4 (``pause_ms`` > ``sync_timeout_s``), so
that a failed switch leaves the source to resume on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from realworld.redis_protocol import pause_writes, promote, wait_until_level

logger = logging.getLogger(__name__)

Endpoint = tuple[str, int]


def redis_redirect_hook(
    endpoint_of: Callable[[str], Endpoint], *, pause_ms: int = 5000, sync_timeout_s: float = 4.0
) -> Callable[[str, str, Callable[[], None]], None]:
    """Return a ``redirect_hook`` for :class:`realworld.haproxy.HAProxyLoadBalancer`.

    Args:
        endpoint_of: Address and port of an instance id (e.g. from ``LocalProcessProvider.record``).
        pause_ms: How long the source's writes are held; must exceed the sync and switch time.
        sync_timeout_s: How long to wait for the replica to catch up under the pause; must be less than
            ``pause_ms`` so that a failed switch leaves the source to resume normally.

    Raises (from the hook):
        TimeoutError: When the replica does not catch up; nothing is switched, the source resumes when
            the pause ends, and the caller can roll back.
    """
    if sync_timeout_s * 1000 >= pause_ms:
        raise ValueError(f"sync_timeout_s: must be shorter than pause_ms ({pause_ms} ms), got {sync_timeout_s}")

    def hook(instance_id: str, replacement_id: str, switch: Callable[[], None]) -> None:
        source, replica = endpoint_of(instance_id), endpoint_of(replacement_id)
        started = time.monotonic()
        pause_writes(*source, pause_ms)
        offset = wait_until_level(source, replica, timeout_s=sync_timeout_s)
        promote(*replica)
        switch()
        logger.info(
            "redis switch %s -> %s at offset %d in %.3f s (writes paused meanwhile)",
            instance_id,
            replacement_id,
            offset,
            time.monotonic() - started,
        )

    return hook
