"""A clock tests move by hand (or through the workflow runner)."""

from __future__ import annotations


class FakeClock:
    """Implements the ``Clock`` port; time only moves forward, and only when told."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, time: float) -> None:
        if time < self._now:
            raise ValueError(f"clock cannot go back from {self._now} to {time}")
        self._now = time
