"""FutureOperation and OperationRunner: live ports return at once and report through done()/result()."""

from __future__ import annotations

import threading

import pytest

from policies.waiting import Operation
from realworld.operations import FutureOperation, OperationRunner, completed


def test_a_started_operation_is_an_operation_and_carries_its_value() -> None:
    release = threading.Event()
    with OperationRunner(max_workers=1) as runner:
        operation = runner.start("wait", lambda: release.wait(10) and 42)
        assert isinstance(operation, Operation)
        assert not operation.done()
        release.set()
        assert operation.result(timeout=10) == 42
        assert operation.done()


def test_a_failed_operation_raises_its_error_from_result() -> None:
    def boom() -> None:
        raise ValueError("restore failed")

    with OperationRunner(max_workers=1) as runner:
        operation = runner.start("boom", boom)
        with pytest.raises(ValueError, match="restore failed"):
            operation.result(timeout=10)


def test_start_observed_lets_work_leave_a_reason() -> None:
    def work(operation: FutureOperation[bool]) -> bool:
        operation.reason = "status 'DOWN'"
        return False

    with OperationRunner(max_workers=1) as runner:
        operation = runner.start_observed("health", work)
        assert operation.result(timeout=10) is False
        assert operation.reason == "status 'DOWN'"


def test_queued_work_fails_instead_of_hanging_when_the_runner_closes() -> None:
    release = threading.Event()
    runner = OperationRunner(max_workers=1)
    blocker = runner.start("blocker", release.wait, 10)
    queued = runner.start("queued", lambda: 1)
    threading.Timer(0.2, release.set).start()
    runner.close(wait=True)
    assert blocker.result(timeout=10) is True
    assert queued.done()
    with pytest.raises(RuntimeError, match="cancelled: runner closed"):
        queued.result()
    with pytest.raises(RuntimeError, match="after the runner was closed"):
        runner.start("late", lambda: 1)


def test_completed_is_done_at_once() -> None:
    operation = completed("noop", "x")
    assert operation.done() and operation.result() == "x"
