"""The wall-clock driver runs the same workflows as the SimPy driver, with the same ordering."""

from __future__ import annotations

import threading
import time

import pytest

from policies.waiting import CompletedOperation, Delay, Spawn, Until
from realworld.driver import WallClockDriver


class SteppedClock:
    """A clock that only moves when the driver sleeps, so the driver's logic is tested exactly."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class ThreadOp:
    """An operation finished by a thread after some real time, like the live adapters' operations."""

    def __init__(self, value=None, error=None, after_s: float = 0.01) -> None:
        self._event = threading.Event()
        self._value, self._error = value, error
        threading.Timer(after_s, self._event.set).start()

    def done(self) -> bool:
        return self._event.is_set()

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value


def test_delays_spawns_and_completed_operations_in_driver_order():
    clock = SteppedClock()
    driver = WallClockDriver(clock, sleep=clock.sleep)  # type: ignore[arg-type]
    log = []

    def child(name):
        log.append((f"{name} start", clock.now() - 1_000))
        yield Delay(5)
        log.append((f"{name} end", clock.now() - 1_000))
        return name

    def parent():
        log.append(("parent", clock.now() - 1_000))
        yield Delay(1)
        handle = yield Spawn(child("c"))
        value = yield Until(CompletedOperation("ok"))
        log.append((f"until {value}", clock.now() - 1_000))
        yield Delay(10)
        log.append(("done", clock.now() - 1_000))
        return handle

    handle = driver.run_to_completion(parent())
    # An operation that is already done resumes the spawner before the child's first step, exactly as
    # sim.driver does for operations not backed by a SimPy event.
    assert log == [("parent", 0), ("until ok", 1), ("c start", 1), ("c end", 6), ("done", 11)]
    assert handle.finished and handle.value == "c"


def test_operations_finished_by_threads_resume_the_workflow_with_their_value_or_error():
    driver = WallClockDriver(poll_s=0.005)
    seen = []

    def wf():
        seen.append((yield Until(ThreadOp(value=42))))
        try:
            yield Until(ThreadOp(error=RuntimeError("restore failed")))
        except RuntimeError as exc:
            seen.append(str(exc))
        return "handled"

    assert driver.run_to_completion(wf(), timeout_s=10) == "handled"
    assert seen == [42, "restore failed"]


def test_delays_wait_at_least_their_length_of_real_time():
    driver = WallClockDriver()
    stamps = []

    def wf():
        stamps.append(time.monotonic())
        yield Delay(0.05)
        stamps.append(time.monotonic())

    driver.run_to_completion(wf(), timeout_s=10)
    assert stamps[1] - stamps[0] >= 0.045  # never early (a correctness law, not a speed figure)


def test_a_crashing_child_does_not_stop_its_siblings_and_stop_ends_a_run():
    clock = SteppedClock()
    driver = WallClockDriver(clock, sleep=clock.sleep)  # type: ignore[arg-type]
    ticks = []

    def crash():
        yield Delay(1)
        raise ValueError("bug")

    def forever():
        while True:
            ticks.append(clock.now())
            if len(ticks) == 5:
                driver.stop()
            yield Delay(10)

    def main():
        crashed = yield Spawn(crash())
        yield Spawn(forever())
        yield Delay(2)
        return crashed

    process = driver.start(main())
    driver.run()
    assert len(ticks) == 5
    assert process.finished and process.value.finished and isinstance(process.value.error, ValueError)


def test_run_to_completion_times_out_and_a_bad_command_is_an_error():
    driver = WallClockDriver(poll_s=0.005)

    def never():
        yield Until(ThreadOp(after_s=60))

    with pytest.raises(TimeoutError):
        driver.run_to_completion(never(), timeout_s=0.05)

    def bad():
        yield "sleep please"

    with pytest.raises(TypeError, match="not Delay, Until or Spawn"):
        WallClockDriver().run_to_completion(bad(), timeout_s=1)
