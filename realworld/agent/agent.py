"""The Resource Mirroring Agent: a sampling thread and a snapshot scheduler for one instance.

Sampling and snapshots run on their own threads so a slow upload never delays a sample. At most one
snapshot is in flight: one falling due while its predecessor is still capturing or uploading is skipped
and counted (as the twin's RMA does), so a slow store leads to fewer, not piled-up, snapshots.

Scheduling: the next snapshot is due one interval after the previous one *started*. After ``k``
consecutive failures it is due ``min(interval x 2^(k-1), max(interval, backoff_cap_s))`` after the
failed one started, so the first retry comes at the normal next interval and a failing store is then
asked less and less often, never less often than every ``backoff_cap_s`` (default 300 s) unless the
interval itself is longer. A new interval takes effect for the next snapshot; a shorter one pulls the
pending snapshot in (possibly to "now").
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from realworld.agent.capture import CaptureBackend, CaptureError
from realworld.agent.sampler import InstanceGoneError, Sampler
from realworld.agent.samples import SampleRing
from realworld.agent.uploader import Retention, SnapshotInfo, SnapshotUploader

log = logging.getLogger(__name__)

#: Smallest and largest snapshot interval the agent accepts (s).
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 7 * 24 * 3600.0


class SnapshotBusyError(RuntimeError):
    """A snapshot was asked for while another one is still capturing or uploading."""


class SnapshotFailedError(RuntimeError):
    """A snapshot's capture or upload failed; ``str()`` says which and why."""


@dataclass
class AgentCounters:
    """Everything the agent has done, for ``/metrics`` and ``/v1/status`` (read under the agent's lock).

    Attributes:
        samples_taken: Samples stored in the ring.
        sample_errors: Sampling attempts that failed (instance gone, unreadable counters).
        snapshots_ok: Snapshots captured and committed.
        snapshots_failed: Snapshots whose capture or upload failed.
        snapshots_skipped: Snapshots that fell due while the previous one was still in flight.
        consecutive_failures: Failures since the last success (drives the backoff).
        logical_bytes_total: Captured bytes over all committed snapshots.
        sent_bytes_total: Bytes the uploader sent over all committed snapshots.
        stored_bytes_total: New bytes the store kept over all committed snapshots.
        capture_seconds_total: Time spent capturing (committed and failed snapshots).
        upload_seconds_total: Time spent uploading (committed and failed snapshots).
        last_capture_s: Capture time of the latest committed snapshot.
        last_upload_s: Upload time of the latest committed snapshot.
        last_success_at: Epoch time the latest committed snapshot finished, if any.
        last_error: One-line reason of the latest failure, if any.
        last_snapshot: What the store reported for the latest committed snapshot.
    """

    samples_taken: int = 0
    sample_errors: int = 0
    snapshots_ok: int = 0
    snapshots_failed: int = 0
    snapshots_skipped: int = 0
    consecutive_failures: int = 0
    logical_bytes_total: int = 0
    sent_bytes_total: int = 0
    stored_bytes_total: int = 0
    capture_seconds_total: float = 0.0
    upload_seconds_total: float = 0.0
    last_capture_s: float = 0.0
    last_upload_s: float = 0.0
    last_success_at: float | None = None
    last_error: str | None = None
    last_snapshot: SnapshotInfo | None = field(default=None)


def check_interval(interval_s: float, *, name: str = "interval_s") -> float:
    """Return ``interval_s`` as a float if it is a finite number in range, else raise ``ValueError`` naming it."""
    if isinstance(interval_s, bool) or not isinstance(interval_s, int | float):
        raise ValueError(f"{name}: must be a number of seconds, got {interval_s!r}")
    value = float(interval_s)
    if not math.isfinite(value) or not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
        raise ValueError(f"{name}: must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g} s, got {interval_s!r}")
    return value


def backoff_delay_s(interval_s: float, consecutive_failures: int, cap_s: float) -> float:
    """Time from one snapshot start to the next: the interval, doubled per failure beyond the first, capped.

    The cap is ``max(interval_s, cap_s)`` so backing off never makes snapshots *more* frequent.
    """
    if consecutive_failures <= 1:
        return interval_s
    return min(interval_s * 2.0 ** (consecutive_failures - 1), max(interval_s, cap_s))


def describe_process(proc: psutil.Process) -> str | None:
    """``"PID NAME CMDLINE"`` for the process list, or ``None`` if it exited meanwhile."""
    try:
        with proc.oneshot():
            return f"{proc.pid} {proc.name()} {' '.join(proc.cmdline())}".rstrip()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def open_files(procs: list[psutil.Process]) -> list[str]:
    """Absolute paths of the regular files the processes hold open, deduplicated and sorted."""
    paths: set[str] = set()
    for proc in procs:
        try:
            paths.update(f.path for f in proc.open_files())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return sorted(paths)


class MirroringAgent:
    """Samples one instance and mirrors its state into a Mirror Store on a schedule.

    Call :meth:`start` once and :meth:`stop` once. :meth:`set_interval`, :meth:`set_retention`,
    :meth:`snapshot_now` and :meth:`status` are safe from any thread (the HTTP API calls them).
    """

    def __init__(
        self,
        instance_id: str,
        *,
        sampler: Sampler,
        capture: CaptureBackend,
        uploader: SnapshotUploader,
        interval_s: float = 60.0,
        retention: Retention | None = None,
        sample_interval_s: float = 1.0,
        ring_capacity: int = 3600,
        backoff_cap_s: float = 300.0,
        work_dir: Path | None = None,
        root_pid: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Store the parts; nothing runs until :meth:`start`.

        Args:
            instance_id: The instance mirrored (the store's key).
            sampler: Measures the instance; also lists its processes for each snapshot.
            capture: Writes the state into a directory.
            uploader: Sends a captured directory to the Mirror Store.
            interval_s: Time between snapshot starts.
            retention: What the store keeps; passed with every upload.
            sample_interval_s: Time between samples.
            ring_capacity: Samples kept for ``/v1/samples``.
            backoff_cap_s: Longest wait between retries after failures, unless the interval is longer.
            work_dir: Where captures are staged (one folder for the agent's life, removed by :meth:`stop`).
            root_pid: The instance's root pid, given to hooks as ``{pid}`` and to CRIU.
            clock: Epoch time source.
        """
        if not instance_id:
            raise ValueError("instance_id: must not be empty")
        if not (math.isfinite(sample_interval_s) and sample_interval_s > 0):
            raise ValueError(f"sample_interval_s: must be a finite number > 0, got {sample_interval_s!r}")
        self.instance_id = instance_id
        self.samples = SampleRing(ring_capacity)
        self.sample_interval_s = sample_interval_s
        self._sampler = sampler
        self._capture = capture
        self._uploader = uploader
        self._interval_s = check_interval(interval_s)
        self._retention = retention
        self._backoff_cap_s = backoff_cap_s
        self._work_dir = work_dir
        self._root_pid = root_pid
        self._clock = clock
        self._lock = threading.Condition()
        self._in_flight = threading.Lock()
        self._counters = AgentCounters()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._anchor = time.monotonic()
        self._next_due = self._anchor + self._interval_s
        self._stage: Path | None = None

    # --- configuration, from any thread -------------------------------------------------------

    @property
    def interval_s(self) -> float:
        """Current snapshot interval (s)."""
        with self._lock:
            return self._interval_s

    @property
    def retention(self) -> Retention | None:
        """Current retention passed to the store."""
        with self._lock:
            return self._retention

    @property
    def capture_name(self) -> str:
        """Name of the capture backend (``hook``, ``dir``, ``criu``)."""
        return self._capture.name

    def _delay_locked(self) -> float:
        return backoff_delay_s(self._interval_s, self._counters.consecutive_failures, self._backoff_cap_s)

    def set_interval(self, interval_s: float) -> None:
        """Snapshot every ``interval_s`` from the next snapshot on; a shorter interval pulls the pending one in.

        Raises:
            ValueError: Not a finite number within [MIN_INTERVAL_S, MAX_INTERVAL_S]; nothing changes.
        """
        value = check_interval(interval_s)
        with self._lock:
            self._interval_s = value
            self._next_due = min(self._next_due, self._anchor + self._delay_locked())
            self._lock.notify_all()
        log.info("%s: snapshot interval set to %g s", self.instance_id, value)

    def set_retention(self, retention: Retention | None) -> None:
        """Pass ``retention`` to the store with every upload from now on."""
        with self._lock:
            self._retention = retention
        log.info("%s: retention set to %s", self.instance_id, retention)

    def counters(self) -> AgentCounters:
        """A consistent copy of the counters."""
        with self._lock:
            return replace(self._counters)

    def next_due_in_s(self) -> float:
        """Seconds until the next scheduled snapshot (negative if overdue)."""
        with self._lock:
            return self._next_due - time.monotonic()

    @property
    def busy(self) -> bool:
        """Whether a snapshot is capturing or uploading now."""
        return self._in_flight.locked()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, *, first_snapshot_now: bool = False) -> None:
        """Start sampling and scheduling; the first snapshot is due one interval from now (or at once)."""
        with self._lock:
            self._anchor = time.monotonic()
            self._next_due = self._anchor + (0.0 if first_snapshot_now else self._interval_s)
        for name, target in (("sampler", self._sample_loop), ("scheduler", self._schedule_loop)):
            thread = threading.Thread(target=target, name=f"rma-{name}-{self.instance_id}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop both loops, wait (bounded) for an in-flight snapshot to finish, remove the staging folder."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        if self._in_flight.acquire(timeout=timeout_s):
            try:
                if self._stage is not None:
                    shutil.rmtree(self._stage, ignore_errors=True)
                    self._stage = None
            finally:
                self._in_flight.release()

    # --- sampling -----------------------------------------------------------------------------

    def sample_once(self) -> None:
        """Take one sample into the ring; a failure is counted and logged, never raised."""
        try:
            sample = self._sampler.sample()
        except (InstanceGoneError, OSError, ValueError) as exc:
            with self._lock:
                self._counters.sample_errors += 1
            log.warning("%s: sample failed: %s", self.instance_id, exc)
            return
        self.samples.append(sample)
        with self._lock:
            self._counters.samples_taken += 1

    def _sample_loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_at += self.sample_interval_s
            next_at = max(next_at, time.monotonic())  # after a stall, do not burst to catch up
            self._stop.wait(next_at - time.monotonic())

    # --- snapshots ----------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        while True:
            with self._lock:
                while not self._stop.is_set() and (wait := self._next_due - time.monotonic()) > 0:
                    self._lock.wait(wait)
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self._anchor = started
                self._next_due = started + self._delay_locked()
            if not self._in_flight.acquire(blocking=False):
                with self._lock:
                    self._counters.snapshots_skipped += 1
                log.warning("%s: snapshot skipped: the previous one is still in flight", self.instance_id)
                continue
            threading.Thread(
                target=self._scheduled_snapshot, args=(started,), name=f"rma-snapshot-{self.instance_id}", daemon=True
            ).start()

    def _scheduled_snapshot(self, started: float) -> None:
        try:
            self._snapshot_holding_lock()
        except SnapshotFailedError:
            with self._lock:  # back off from when the failed one started
                self._next_due = max(self._next_due, started + self._delay_locked())
                self._lock.notify_all()
        finally:
            self._in_flight.release()

    def snapshot_now(self) -> SnapshotInfo:
        """Take one snapshot now, in the calling thread, and return what the store committed.

        Raises:
            SnapshotBusyError: Another snapshot is in flight (nothing started).
            SnapshotFailedError: Capture or upload failed (counted like a scheduled failure).
        """
        if not self._in_flight.acquire(blocking=False):
            raise SnapshotBusyError("a snapshot is already in flight; try again when it finishes")
        try:
            return self._snapshot_holding_lock()
        finally:
            self._in_flight.release()

    def _staging_dir(self) -> Path:
        """The staging directory for the next capture: emptied, unless the backend updates it in place.

        It lives as long as the agent (one stable path), so a backend that reuses its previous capture
        leaves unchanged files untouched and the store client's files cache recognises them.
        """
        if self._stage is None or not self._stage.is_dir():
            self._stage = Path(tempfile.mkdtemp(prefix=f"rma-{self.instance_id}-", dir=self._work_dir))
        elif not self._capture.reuses_previous:
            shutil.rmtree(self._stage)
            self._stage.mkdir()
        return self._stage

    def _snapshot_holding_lock(self) -> SnapshotInfo:
        timestamp = self._clock()
        t0 = time.monotonic()
        capture_s = upload_s = 0.0
        try:
            try:
                stage = self._staging_dir()
                files = self._capture.capture(stage, instance_id=self.instance_id, pid=self._root_pid)
                try:
                    procs = self._sampler.processes()
                except InstanceGoneError:
                    procs = []
                process_list = [d for d in map(describe_process, procs) if d is not None]
                file_list = files + open_files(procs)
            except (CaptureError, OSError) as exc:  # OSError: staging disk full or unwritable
                capture_s = time.monotonic() - t0
                raise SnapshotFailedError(str(exc) if isinstance(exc, CaptureError) else f"capture: {exc}") from exc
            capture_s = time.monotonic() - t0
            with self._lock:
                retention = self._retention
            t1 = time.monotonic()
            try:
                info = self._uploader.upload_directory(
                    self.instance_id,
                    stage,
                    timestamp=timestamp,
                    process_list=process_list,
                    file_list=file_list,
                    retention=retention,
                )
            except Exception as exc:  # any uploader failure (network, store refusal) is one counted failure
                upload_s = time.monotonic() - t1
                raise SnapshotFailedError(f"upload: {type(exc).__name__}: {exc}") from exc
            upload_s = time.monotonic() - t1
        except SnapshotFailedError as exc:
            with self._lock:
                self._counters.snapshots_failed += 1
                self._counters.consecutive_failures += 1
                self._counters.capture_seconds_total += capture_s
                self._counters.upload_seconds_total += upload_s
                self._counters.last_error = str(exc)
            log.error("%s: snapshot failed: %s", self.instance_id, exc)
            raise
        with self._lock:
            c = self._counters
            c.snapshots_ok += 1
            c.consecutive_failures = 0
            c.logical_bytes_total += info.logical_bytes
            c.sent_bytes_total += info.sent_bytes
            c.stored_bytes_total += info.stored_bytes
            c.capture_seconds_total += capture_s
            c.upload_seconds_total += upload_s
            c.last_capture_s, c.last_upload_s = capture_s, upload_s
            c.last_success_at = self._clock()
            c.last_snapshot = info
        log.info(
            "%s: snapshot %s: %d files, %d bytes, sent %d, capture %.2f s, upload %.2f s",
            self.instance_id,
            info.snapshot_id,
            info.file_count,
            info.logical_bytes,
            info.sent_bytes,
            capture_s,
            upload_s,
        )
        return info
