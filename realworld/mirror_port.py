"""The live :class:`policies.ports.MirrorStore`: every IVN's Mirror Store service plus the agents.

The migration workflow asks for the latest complete snapshot of an instance in its target IVN; the
controller changes instances' snapshot intervals. Live, the first is a query to that IVN's Mirror
Store service (``mirrortwin store serve``) and the second a request to the instance's agent, which
owns its schedule. This adapter is the only place that knows both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from policies.records import MirrorSnapshot
from realworld.agent.control_client import AgentControlClient, AgentControlError

log = logging.getLogger(__name__)


class SnapshotListing(Protocol):
    """What this adapter needs of a store client (``realworld.store.client.MirrorStoreClient``)."""

    def latest(self, instance_id: str) -> Any:
        """The latest committed snapshot's info (``SnapshotInfo``) or ``None``."""
        ...


class LiveMirrorStore:
    """Snapshots from the IVNs' stores, snapshot intervals through the agents.

    Args:
        stores: The store client to ask for an instance's snapshots in an IVN, as
            ``stores(ivn, instance_id)`` (a store keeps each tenant's snapshots apart, and the tenant is
            the IVN the instance was mirrored from), or ``None`` when that IVN has no store.
        agents: The control client of the agent mirroring a logical instance now (``None``: none).
    """

    def __init__(
        self,
        stores: Callable[[str, str], SnapshotListing | None],
        agents: Callable[[str], AgentControlClient | None],
    ) -> None:
        self._stores = stores
        self._agents = agents
        self.interval_changes: list[tuple[str, float]] = []

    def latest_snapshot(self, instance_id: str, ivn: str) -> MirrorSnapshot | None:
        """The newest committed snapshot of ``instance_id`` in ``ivn``'s store, or ``None``.

        A store that cannot be reached is treated as holding nothing (the workflow then copies the
        whole state from the source), and logged: a migration away from a failing host should not
        wait for a store to come back.
        """
        try:
            store = self._stores(ivn, instance_id)
            if store is None:
                return None
            info = store.latest(instance_id)
        except Exception as exc:  # any client error means "no usable snapshot"; say why
            log.warning("mirror store of %s: latest(%s) failed: %s", ivn, instance_id, exc)
            return None
        if info is None:
            return None
        return snapshot_record(info, ivn)

    def set_snapshot_interval(self, instance_id: str, interval_s: float) -> None:
        """Forward the new interval to the instance's agent (logged, not raised, if it is unreachable)."""
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise ValueError(f"interval_s: must be a finite number > 0, got {interval_s!r}")
        agent = self._agents(instance_id)
        if agent is None:
            log.warning("no agent for %s; snapshot interval %.0f s not applied", instance_id, interval_s)
            return
        try:
            agent.set_interval(interval_s)
            self.interval_changes.append((instance_id, float(interval_s)))
        except AgentControlError as exc:
            log.warning("%s", exc)


def snapshot_record(info: Any, ivn: str) -> MirrorSnapshot:
    """Turn a store client's ``SnapshotInfo`` into the specification's :class:`MirrorSnapshot`.

    ``memory_image`` is the snapshot's logical size (bytes it restores), as in the twin.
    """
    process_list: Sequence[str] = tuple(getattr(info, "process_list", ()) or ())
    file_list: Sequence[str] = tuple(getattr(info, "file_list", ()) or ())
    return MirrorSnapshot(
        instance_id=str(info.instance_id),
        timestamp=float(info.timestamp),
        memory_image=int(info.logical_bytes),
        process_list=process_list,
        file_list=file_list,
        ivn=ivn,
        chain_length=0,
        snapshot_id=str(info.snapshot_id),
    )
