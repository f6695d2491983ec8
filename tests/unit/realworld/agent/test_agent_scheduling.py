"""The agent's scheduler with real threads, a capture writing real files and the fake uploader."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from realworld.agent.agent import (
    MirroringAgent,
    SnapshotBusyError,
    SnapshotFailedError,
    backoff_delay_s,
    check_interval,
)
from realworld.agent.uploader import Retention
from tests.fakes.fake_agent_parts import CountingCapture, SelfSampler
from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., MirroringAgent]]:
    agents: list[MirroringAgent] = []

    def make(uploader: FakeSnapshotUploader, capture: CountingCapture | None = None, **kw: object) -> MirroringAgent:
        agent = MirroringAgent(
            "inst-1",
            sampler=SelfSampler(),
            capture=capture or CountingCapture(),
            uploader=uploader,
            work_dir=tmp_path,
            **kw,  # type: ignore[arg-type]
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop(timeout_s=5)


def test_snapshot_now_uploads_state_process_and_file_lists(make_agent, tmp_path: Path) -> None:
    uploader = FakeSnapshotUploader()
    agent = make_agent(uploader, retention=Retention(keep_last=3))
    info = agent.snapshot_now()
    (upload,) = uploader.uploads
    assert upload.files == {"state.txt": b"inst-1 1"}
    assert upload.retention == Retention(keep_last=3)
    assert upload.process_list[0].startswith(f"{os.getpid()} ")
    assert upload.file_list is not None and upload.file_list[0] == "state.txt"
    assert info.snapshot_id == "inst-1-1" and info.logical_bytes == len(b"inst-1 1")
    c = agent.counters()
    assert (c.snapshots_ok, c.logical_bytes_total, c.last_snapshot) == (1, 8, info)
    agent.stop()
    assert list(tmp_path.iterdir()) == []  # the staging folder is gone once the agent stops


def test_sampling_thread_fills_the_ring(make_agent) -> None:
    agent = make_agent(FakeSnapshotUploader(), sample_interval_s=0.05)
    agent.start()
    wait_until(lambda: len(agent.samples) >= 3)
    assert agent.counters().samples_taken >= 3


def test_shorter_interval_reschedules_the_pending_snapshot(make_agent) -> None:
    uploader = FakeSnapshotUploader()
    agent = make_agent(uploader, interval_s=3600.0)
    agent.start()
    assert agent.next_due_in_s() > 3000
    agent.set_interval(1.0)
    assert agent.next_due_in_s() <= 1.0
    wait_until(lambda: len(uploader.uploads) >= 1)
    assert agent.interval_s == 1.0


def test_longer_interval_takes_effect_after_the_pending_one(make_agent) -> None:
    agent = make_agent(FakeSnapshotUploader(), interval_s=60.0)
    agent.start()
    agent.set_interval(600.0)
    assert agent.next_due_in_s() <= 60.0
    assert agent.interval_s == 600.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 1e12, True, "10"])
def test_bad_interval_is_refused_and_changes_nothing(make_agent, bad: object) -> None:
    agent = make_agent(FakeSnapshotUploader(), interval_s=60.0)
    with pytest.raises(ValueError, match="interval_s"):
        agent.set_interval(bad)  # type: ignore[arg-type]
    assert agent.interval_s == 60.0
    with pytest.raises(ValueError, match="interval_s"):
        check_interval(bad)  # type: ignore[arg-type]


def test_snapshot_due_while_one_uploads_is_skipped_and_counted(make_agent) -> None:
    release = threading.Event()
    uploader = FakeSnapshotUploader(release=release)
    agent = make_agent(uploader, interval_s=1.0)
    agent.start(first_snapshot_now=True)
    wait_until(uploader.entered.is_set)
    wait_until(lambda: agent.counters().snapshots_skipped >= 1)
    with pytest.raises(SnapshotBusyError):
        agent.snapshot_now()
    release.set()
    wait_until(lambda: agent.counters().snapshots_ok >= 1)
    assert uploader.calls == agent.counters().snapshots_ok + (1 if agent.busy else 0)


def test_failures_are_counted_and_retried(make_agent) -> None:
    uploader = FakeSnapshotUploader(fail_next=1)
    agent = make_agent(uploader, interval_s=1.0)
    agent.start(first_snapshot_now=True)
    wait_until(lambda: agent.counters().snapshots_ok >= 1)
    c = agent.counters()
    assert c.snapshots_failed == 1
    assert c.consecutive_failures == 0
    assert c.last_error is not None and "fake store unreachable" in c.last_error


def test_capture_failure_raises_from_snapshot_now_and_uploads_nothing(make_agent) -> None:
    capture = CountingCapture()
    capture.fail = True
    uploader = FakeSnapshotUploader()
    agent = make_agent(uploader, capture)
    with pytest.raises(SnapshotFailedError, match="state unreadable"):
        agent.snapshot_now()
    assert uploader.calls == 0
    assert agent.counters().snapshots_failed == 1


def test_backoff_doubles_after_the_first_retry_and_is_capped() -> None:
    delays = [backoff_delay_s(10.0, k, 60.0) for k in range(7)]
    assert delays == [10.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert backoff_delay_s(600.0, 5, 60.0) == 600.0  # never more often than the interval


def test_backoff_delays_the_next_attempt_after_failures(make_agent) -> None:
    capture = CountingCapture()
    capture.fail = True
    agent = make_agent(FakeSnapshotUploader(), capture, interval_s=1.0, backoff_cap_s=100.0)
    agent.start(first_snapshot_now=True)
    wait_until(lambda: agent.counters().snapshots_failed >= 2)
    # after two consecutive failures the next start is 2 intervals after the last one began
    assert 1.0 < agent.next_due_in_s() <= 2.0


def test_instance_gone_is_counted_not_raised(make_agent, tmp_path: Path) -> None:
    import subprocess

    from realworld.agent.sampler import ProcessTreeSampler

    proc = subprocess.Popen(["sleep", "30"])
    agent = MirroringAgent(
        "gone",
        sampler=ProcessTreeSampler(proc.pid),
        capture=CountingCapture(),
        uploader=FakeSnapshotUploader(),
        work_dir=tmp_path,
    )
    try:
        agent.sample_once()
        proc.kill()
        proc.wait()
        agent.sample_once()
        c = agent.counters()
        assert (c.samples_taken, c.sample_errors) == (1, 1)
        info = agent.snapshot_now()  # the state can still be mirrored; the process list is then empty
        assert info.process_list == ()
    finally:
        agent.stop()
    assert list(tmp_path.iterdir()) == []
