"""Logical instance ids over physical processes, and a read/write-split load balancer for single writers.

The core names an instance once and for all (``redis-1``): its policies, the controller's in-flight
set, the fleet view and the migration workflow use that *logical* id, and the workflow names the
source backend by it (``set_weights(iid, {iid: 0.9, replacement: 0.1})``), as the twin does. Live, a
migration produces a new process with its own id (``redis-1@ivn-b#1``) and the old one is stopped. So
the live ports sit behind two thin adapters that translate:

* :class:`InstanceIdentities` records which physical process currently *is* each logical instance;
  the load balancer's redirect moves that pointer, and the decommission that follows stops the
  process that was replaced, so a second migration of the same instance starts from the right one;
* :class:`LogicalProvider` and :class:`SplitLoadBalancer` translate ids on the way through.

:class:`SplitLoadBalancer` also fronts each instance twice, because a single-writer store cannot take
writes on two servers: a *read* service whose traffic shifts step by step (the replacement is an
in-sync replica) and a *write* service that switches once, at the redirect, inside the application's
cut-over hook (for Redis :class:`realworld.redis_app.RedisCutover`). An instance without a cut-over
hook (stateless) gets only the read service and the redirect switches directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from policies.records import MirrorSnapshot, Move
from policies.waiting import Operation

#: Suffix of a backend's id in an instance's write service.
WRITE_SUFFIX = ":w"


class InstanceIdentities:
    """Which physical process is each logical instance, and which one a redirect just replaced."""

    def __init__(self, logical_ids: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, str] = {i: i for i in logical_ids}
        self._replaced: dict[str, str] = {}

    def add(self, logical_id: str, physical_id: str | None = None) -> None:
        """Register a logical instance (its first process usually carries the same id)."""
        with self._lock:
            self._current[logical_id] = physical_id or logical_id

    def physical(self, some_id: str) -> str:
        """The current process of a logical id; any other id (a replacement's) is returned unchanged."""
        with self._lock:
            return self._current.get(some_id, some_id)

    def logical_of(self, physical_id: str) -> str | None:
        """The logical instance whose current process is ``physical_id``, if any."""
        with self._lock:
            for logical, physical in self._current.items():
                if physical == physical_id:
                    return logical
        return None

    def promote(self, logical_id: str, replacement_id: str) -> None:
        """After a redirect: the replacement now is the instance; remember what it replaced."""
        with self._lock:
            self._replaced[logical_id] = self._current.get(logical_id, logical_id)
            self._current[logical_id] = replacement_id

    def take_replaced(self, logical_id: str) -> str | None:
        """The process a redirect replaced (to decommission), once."""
        with self._lock:
            return self._replaced.pop(logical_id, None)

    def current(self) -> dict[str, str]:
        """Logical id -> current physical id."""
        with self._lock:
            return dict(self._current)


class Provider(Protocol):
    """The physical provider's part of :class:`policies.ports.InstanceProvider` this adapter forwards."""

    def has_capacity(self, ivn: str, instance_id: str) -> bool: ...  # noqa: D102
    def estimate_migration_s(self, instance_id: str, ivn: str) -> float: ...  # noqa: D102
    def create_from_snapshot(  # noqa: D102
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> Operation[str]: ...
    def live_migrate(self, moves: Sequence[Move]) -> Sequence[Operation[bool]]: ...  # noqa: D102
    def decommission(self, instance_id: str) -> Operation[None]: ...  # noqa: D102


class LogicalProvider:
    """The instance-provider port in logical ids, over a provider of physical processes.

    ``decommission(logical)`` after a redirect stops the process the redirect replaced (the workflow's
    "decommission the source"); ``decommission(replacement)`` (a rollback) stops that replacement.
    """

    def __init__(self, provider: Provider, identities: InstanceIdentities) -> None:
        self._provider = provider
        self._ids = identities

    def has_capacity(self, ivn: str, instance_id: str) -> bool:
        """Whether ``ivn`` can take a replacement of the instance's current process."""
        return self._provider.has_capacity(ivn, self._ids.physical(instance_id))

    def estimate_migration_s(self, instance_id: str, ivn: str) -> float:
        """The physical provider's estimate for the current process."""
        return self._provider.estimate_migration_s(self._ids.physical(instance_id), ivn)

    def create_from_snapshot(
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> Operation[str]:
        """Create a replacement of the instance's current process; its id is the replacement's."""
        return self._provider.create_from_snapshot(self._ids.physical(instance_id), snapshot, ivn, host)

    def live_migrate(self, moves: Sequence[Move]) -> Sequence[Operation[bool]]:
        """Forward same-IVN moves with physical ids."""
        from dataclasses import replace

        return self._provider.live_migrate([replace(m, instance_id=self._ids.physical(m.instance_id)) for m in moves])

    def decommission(self, instance_id: str) -> Operation[None]:
        """Stop the replaced process of a logical id, or the named process."""
        replaced = self._ids.take_replaced(instance_id)
        return self._provider.decommission(replaced if replaced is not None else self._ids.physical(instance_id))


class Balancer(Protocol):
    """What :class:`SplitLoadBalancer` needs of the HAProxy adapter (services keyed by name)."""

    def register_backend(self, instance_id: str, backend_id: str, address: str, port: int) -> None: ...  # noqa: D102
    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None: ...  # noqa: D102
    def check_health(self, backend_id: str) -> Operation[bool]: ...  # noqa: D102
    def redirect(self, instance_id: str, replacement_id: str) -> None: ...  # noqa: D102
    def rollback(self, instance_id: str, replacement_id: str, *, source_id: str | None = None) -> None: ...  # noqa: D102
    def remove_backend(self, backend_id: str) -> None: ...  # noqa: D102


#: A cut-over hook: (source backend id, replacement backend id, switch) — calls ``switch`` when safe.
Cutover = Callable[[str, str, Callable[[], None]], None]


class SplitLoadBalancer:
    """The load-balancer port in logical ids, with a step-shifted read service and a switched write service.

    Args:
        lb: The HAProxy adapter; instance ``X``'s read service is named ``X`` and its write service
            ``X:w`` (see :meth:`write_service`).
        identities: Logical-to-physical ids.
        cutovers: Per logical instance, the application's cut-over hook (instances without one have no
            write service: their redirect switches the read service directly).
    """

    def __init__(self, lb: Balancer, identities: InstanceIdentities, cutovers: Mapping[str, Cutover]) -> None:
        self._lb = lb
        self._ids = identities
        self._cutovers = dict(cutovers)
        # Backend ids inside each service: the read service knows processes by their own ids; the write
        # service by id + WRITE_SUFFIX (HAProxy adapters index backends by id across services).
        self._service_source: dict[str, str] = {}
        self.events: list[tuple[str, str, object]] = []

    @staticmethod
    def write_service(instance_id: str) -> str:
        """Name of an instance's write service."""
        return instance_id + WRITE_SUFFIX

    def register_replacement(self, logical_id: str, replacement_id: str, address: str, port: int) -> None:
        """Add a new replacement process to the instance's services (weight 0, checked)."""
        self._lb.register_backend(logical_id, replacement_id, address, port)
        if logical_id in self._cutovers:
            write_id = self._write_backend(replacement_id)
            self._lb.register_backend(self.write_service(logical_id), write_id, address, port)

    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None:
        """Shift the *read* traffic; writes stay with the single writer until the redirect."""
        self._lb.set_weights(instance_id, {self._ids.physical(b): w for b, w in weights.items()})
        self.events.append(("weights", instance_id, dict(weights)))

    def check_health(self, backend_id: str) -> Operation[bool]:
        """HAProxy's verdict on the process behind ``backend_id``."""
        return self._lb.check_health(self._ids.physical(backend_id))

    def redirect(self, instance_id: str, replacement_id: str) -> None:
        """Move reads and (through the cut-over hook) the writer to the replacement; promote its id."""
        source = self._ids.physical(instance_id)
        cutover = self._cutovers.get(instance_id)

        def switch() -> None:
            if cutover is not None:
                self._lb.redirect(self.write_service(instance_id), self._write_backend(replacement_id))
            self._lb.redirect(instance_id, replacement_id)

        if cutover is None:
            switch()
        else:
            cutover(source, replacement_id, switch)
        self._ids.promote(instance_id, replacement_id)
        self.events.append(("redirect", instance_id, replacement_id))

    def rollback(self, instance_id: str, replacement_id: str) -> None:
        """Give the reads back to the current process and drop the replacement from both services."""
        source = self._ids.physical(instance_id)
        self._lb.rollback(instance_id, replacement_id, source_id=source)
        if instance_id in self._cutovers:
            self._lb.rollback(
                self.write_service(instance_id), replacement_id + WRITE_SUFFIX, source_id=self._write_backend(source)
            )
        self.events.append(("rollback", instance_id, replacement_id))

    def retire(self, logical_id: str, physical_id: str) -> None:
        """Delete a decommissioned process's servers from the instance's services (after a redirect)."""
        self._lb.remove_backend(physical_id)
        if logical_id in self._cutovers:
            self._lb.remove_backend(self._write_backend(physical_id))

    def _write_backend(self, physical_id: str) -> str:
        """The id of a process's server in the write service (the first one is named like the service)."""
        return physical_id + WRITE_SUFFIX

    def describe(self) -> Any:
        """The recorded events (weights, redirects, rollbacks) for reports."""
        return list(self.events)
