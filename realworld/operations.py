"""Operations backed by threads: how live ports start slow work and return at once.

The core never blocks: a port returns an :class:`~policies.waiting.Operation` and the workflow yields
``Until(operation)``; the live driver polls ``done()`` on the wall clock. A
:class:`concurrent.futures.Future` already has ``done()`` and ``result()``, so a live operation is a
future with a label (for logs), and :class:`OperationRunner` owns the small thread pool that runs the
work, so every adapter shares one pool and one place shuts it down.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class FutureOperation(concurrent.futures.Future[T], Generic[T]):
    """A :class:`concurrent.futures.Future` that implements ``policies.waiting.Operation``.

    ``done()`` and ``result()`` come from the future; ``result()`` of an unfinished operation blocks,
    which the wall-clock driver never does because it polls ``done()`` first.

    Attributes:
        label: What the operation does, for logs and error messages (e.g. ``"health redis-a@B#1"``).
        reason: Why it ended as it did, when the adapter has more to say than the value (e.g. why a
            health check answered False). Empty until set.
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.reason = ""

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"FutureOperation({self.label!r}, {state})"


class OperationRunner:
    """Owns a small thread pool and turns callables into :class:`FutureOperation` objects.

    Why a class and not a module-level pool: each adapter (or the composition root) decides how many
    threads it may use and shuts them down in ``close()``; tests get fresh pools and no thread leaks
    between them.

    Args:
        max_workers: Threads in the pool; slow work (restores, health polls) runs concurrently up to it.
        name: Thread name prefix, so stack dumps show which adapter a thread belongs to.
    """

    def __init__(self, max_workers: int = 8, name: str = "mirrortwin-op") -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._closed = False
        self._pending: set[FutureOperation[Any]] = set()

    def start(self, label: str, work: Callable[..., T], *args: Any, **kwargs: Any) -> FutureOperation[T]:
        """Run ``work(*args, **kwargs)`` in the pool and return its operation at once.

        Raises:
            RuntimeError: When the runner is closed (a port called after shutdown is a wiring bug).
        """
        return self.start_observed(label, lambda _operation: work(*args, **kwargs))

    def start_observed(self, label: str, work: Callable[[FutureOperation[T]], T]) -> FutureOperation[T]:
        """Like :meth:`start`, but ``work`` receives its own operation, to set ``reason`` before it ends.

        Why: a caller polling ``done()`` must find the reason already there when the value arrives.
        """
        operation: FutureOperation[T] = FutureOperation(label)

        def run() -> None:
            if not operation.set_running_or_notify_cancel():
                return
            try:
                value = work(operation)
            except BaseException as exc:  # the error belongs to the operation, the workflow handles it
                logger.debug("operation %s failed: %s", label, exc)
                operation.set_exception(exc)
            else:
                operation.set_result(value)
            finally:
                with self._lock:
                    self._pending.discard(operation)

        with self._lock:
            if self._closed:
                raise RuntimeError(f"operation {label!r} started after the runner was closed")
            self._pending.add(operation)
            self._pool.submit(run)
        return operation

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, let running operations finish; cancel queued ones."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            never_started = [operation for operation in self._pending if not operation.running()]
        for operation in never_started:  # queued work that was cancelled: fail it rather than hang a waiter
            try:
                claimed = operation.set_running_or_notify_cancel()
            except RuntimeError:  # a worker claimed it in the meantime; it will finish it
                continue
            if claimed:
                operation.set_exception(RuntimeError(f"operation {operation.label!r} cancelled: runner closed"))

    def __enter__(self) -> OperationRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def completed(label: str, value: T) -> FutureOperation[T]:
    """Return an operation that is already done with ``value`` (an instantaneous port call)."""
    operation: FutureOperation[T] = FutureOperation(label)
    operation.set_result(value)
    return operation
