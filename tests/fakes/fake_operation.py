"""Operations that finish at a known time on a FakeClock, so the runner can jump straight there."""

from __future__ import annotations

from typing import Generic, TypeVar

from tests.fakes.fake_clock import FakeClock

T = TypeVar("T")


class FakeOperation(Generic[T]):
    """Implements ``Operation``: done ``duration_s`` after creation; then returns ``value`` or raises ``error``.

    Attributes:
        label: How the runner names it in the log when a workflow resumes on it.
        completes_at: Time at which it is done (the runner schedules the resume there).
    """

    def __init__(
        self,
        clock: FakeClock,
        duration_s: float,
        value: T,
        *,
        label: str,
        error: Exception | None = None,
    ) -> None:
        self._clock = clock
        self._value = value
        self._error = error
        self.label = label
        self.completes_at = clock.now() + duration_s

    def done(self) -> bool:
        return self._clock.now() >= self.completes_at

    def result(self) -> T:
        if not self.done():
            raise RuntimeError(f"{self.label} is not done yet")
        if self._error is not None:
            raise self._error
        return self._value
