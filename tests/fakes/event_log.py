"""A shared, time-stamped log of what fakes were asked to do, for SimPy-style whole-log assertions."""

from __future__ import annotations

from policies.ports import Clock


class EventLog:
    """Append-only list of ``(event, time)`` pairs; fakes and the runner write, tests compare."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.entries: list[tuple[str, float]] = []

    def add(self, event: str) -> None:
        self.entries.append((event, self._clock.now()))

    def events(self) -> list[str]:
        """The event texts without times, for tests that only care about order."""
        return [event for event, _ in self.entries]
