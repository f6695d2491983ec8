"""Operations of the twin: a port call that completes at a simulated instant.

:class:`SimOperation` wraps a SimPy event so that the core's workflow can wait on it through the
driver (``policies.waiting.Until``) without knowing it runs in simulated time.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import simpy

T = TypeVar("T")


class SimOperation(Generic[T]):
    """A port operation backed by a SimPy event; its value is the event's value."""

    def __init__(self, event: simpy.Event):
        self.event = event

    def done(self) -> bool:
        """True once the event has been processed."""
        return bool(self.event.processed)

    def result(self) -> T:
        """The event's value; raises the exception it failed with."""
        if not self.event.ok:
            raise self.event.value
        value: Any = self.event.value
        return value  # type: ignore[no-any-return]


def completed(env: simpy.Environment, value: Any) -> SimOperation[Any]:
    """An operation that has already succeeded with ``value`` (processed at the current instant)."""
    ev = env.event()
    ev.succeed(value)
    return SimOperation(ev)


def failed(env: simpy.Environment, error: BaseException) -> SimOperation[Any]:
    """An operation that has already failed with ``error``."""
    ev = env.event()
    ev.fail(error)
    ev.defused = True
    return SimOperation(ev)
