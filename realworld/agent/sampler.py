"""Samplers: what one instance is using now, from its process tree or its cgroup v2 directory.

Both keep the previous cumulative counters and turn them into rates over the elapsed (monotonic)
interval. Network numbers come from ``/proc/<pid>/net/dev``, i.e. the counters of the *network
namespace* the instance runs in, summed over its interfaces except ``lo``: in our design each IVN
instance gets its own namespace, so that is exactly the instance's traffic; an instance sharing the
host's namespace would report the whole host's traffic (psutil has no per-process network counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import psutil

from realworld.agent.samples import ResourceSample

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError, ProcessLookupError)


class InstanceGoneError(RuntimeError):
    """The instance the sampler watches no longer exists (its root process or cgroup is gone)."""


class Sampler(Protocol):
    """Produces one :class:`ResourceSample` per call and knows the instance's processes."""

    def sample(self) -> ResourceSample:
        """Measure now; rates are over the time since the previous call. Raises :class:`InstanceGoneError`."""
        ...

    def processes(self) -> list[psutil.Process]:
        """The instance's live processes now (root first where there is one)."""
        ...


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (an exited child its parent has not reaped yet uses nothing)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except _GONE:
        return False


def read_netns_bytes(pid: int) -> tuple[int, int]:
    """Received and sent bytes of ``pid``'s network namespace, summed over every interface but ``lo``.

    Raises:
        InstanceGoneError: ``pid`` no longer exists.
    """
    try:
        text = Path(f"/proc/{pid}/net/dev").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise InstanceGoneError(f"process {pid} is gone") from exc
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = counters.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def _rate(now: int | float, before: int | float | None, elapsed_s: float) -> float:
    """Per-second rate of a cumulative counter; a reset or wrap (negative delta) counts as 0."""
    if before is None or elapsed_s <= 0:
        return 0.0
    return max(0.0, (now - before) / elapsed_s)


@dataclass
class _Counters:
    """Cumulative counters at one instant, from which the next sample's rates are differenced."""

    at_monotonic: float
    cpu_s: float
    read_bytes: int
    write_bytes: int
    net_rx: int
    net_tx: int


class ProcessTreeSampler:
    """Samples a root process and all its descendants.

    CPU and disk counters are kept per process (keyed by pid and creation time, so a reused pid is a
    new process): a process first seen after the previous sample counts from its start if it started
    since then, else from now; a process that exited between samples loses only its last partial
    interval. Exits never raise; only the root's disappearance does.
    """

    def __init__(
        self,
        root_pid: int,
        *,
        cores: float | None = None,
        memory_metric: Literal["rss", "pss"] = "rss",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Attach to the root process (it must exist now).

        Args:
        root_pid: The instance's root process.
        cores: Cores the instance is allotted (cpu_util's denominator); default: every core.
        memory_metric: ``rss`` (cheap, counts shared pages in every process) or ``pss`` (reads
            ``smaps_rollup``, shares split fairly; costs more per process).
        clock: Epoch time source for the sample timestamps.
        """
        try:
            self._root = psutil.Process(root_pid)
        except psutil.NoSuchProcess as exc:
            raise InstanceGoneError(f"--pid {root_pid}: no such process") from exc
        self._cores = float(cores or psutil.cpu_count() or 1)
        self._memory_metric = memory_metric
        self._clock = clock
        self._per_process: dict[tuple[int, float], tuple[float, int, int]] = {}
        self._last_at: float | None = None
        self._last_net: tuple[int, int] | None = None

    @property
    def root_pid(self) -> int:
        """The instance's root pid (for the network namespace and the capture's process list)."""
        return self._root.pid

    def processes(self) -> list[psutil.Process]:
        """Root and descendants that are alive now."""
        if not self._root.is_running():
            raise InstanceGoneError(f"process {self._root.pid} (the instance's root) is gone")
        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except _GONE as exc:
            raise InstanceGoneError(f"process {self._root.pid} (the instance's root) is gone") from exc
        return [p for p in tree if _alive(p)]

    def _memory(self, proc: psutil.Process) -> int:
        if self._memory_metric == "pss":
            return int(getattr(proc.memory_full_info(), "pss", 0))
        return int(proc.memory_info().rss)

    def sample(self) -> ResourceSample:
        """Measure the tree now."""
        mono = time.monotonic()
        elapsed = mono - self._last_at if self._last_at is not None else 0.0
        cpu_delta = 0.0
        read_delta = write_delta = 0
        memory = 0
        seen: dict[tuple[int, float], tuple[float, int, int]] = {}
        for proc in self.processes():
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    cpu = times.user + times.system
                    io = proc.io_counters()
                    memory += self._memory(proc)
            except _GONE:
                continue
            seen[key] = (cpu, io.read_bytes, io.write_bytes)
            before = self._per_process.get(key)
            if before is None and self._last_at is not None and key[1] >= self._clock() - elapsed:
                before = (0.0, 0, 0)  # started during the interval: all of its use is new
            if before is not None:
                cpu_delta += max(0.0, cpu - before[0])
                read_delta += max(0, io.read_bytes - before[1])
                write_delta += max(0, io.write_bytes - before[2])
        self._per_process = seen
        try:
            net = read_netns_bytes(self._root.pid)
        except InstanceGoneError:
            net = self._last_net or (0, 0)
        prev_net = self._last_net
        first = self._last_at is None
        self._last_at, self._last_net = mono, net
        return ResourceSample(
            timestamp=self._clock(),
            cpu_util=0.0 if first or elapsed <= 0 else cpu_delta / (elapsed * self._cores),
            memory_bytes=memory,
            net_rx_bps=_rate(net[0], prev_net[0] if prev_net else None, elapsed),
            net_tx_bps=_rate(net[1], prev_net[1] if prev_net else None, elapsed),
            disk_read_bps=0.0 if first or elapsed <= 0 else read_delta / elapsed,
            disk_write_bps=0.0 if first or elapsed <= 0 else write_delta / elapsed,
        )


class CgroupSampler:
    """Samples a cgroup v2 directory: ``cpu.stat`` usage_usec, ``memory.current``, ``io.stat``.

    The cgroup's own counters include processes that exited, so nothing is lost between samples. On
    hybrid hosts where the memory or io controller is not on the v2 hierarchy (its file is absent),
    memory falls back to the summed RSS and disk to the summed ``io_counters`` of ``cgroup.procs``.
    """

    def __init__(self, directory: Path, *, cores: float | None = None, clock: Callable[[], float] = time.time) -> None:
        """Attach to the cgroup (it must exist now).

        Args:
        directory: The cgroup's directory under ``/sys/fs/cgroup``.
        cores: Cores allotted; default: from ``cpu.max`` when it sets a quota, else every core.
        clock: Epoch time source for the sample timestamps.
        """
        if not (directory / "cgroup.procs").is_file():
            raise InstanceGoneError(f"--cgroup {directory}: not a cgroup v2 directory (no cgroup.procs)")
        self._dir = directory
        self._cores = float(cores or self._quota_cores() or psutil.cpu_count() or 1)
        self._clock = clock
        self._last: _Counters | None = None

    def _quota_cores(self) -> float | None:
        try:
            quota, period = (self._dir / "cpu.max").read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return None if quota == "max" else int(quota) / int(period)

    def _pids(self) -> list[int]:
        try:
            return [int(p) for p in (self._dir / "cgroup.procs").read_text().split()]
        except FileNotFoundError as exc:
            raise InstanceGoneError(f"cgroup {self._dir} is gone") from exc

    def processes(self) -> list[psutil.Process]:
        """Processes in the cgroup now (not its child cgroups)."""
        alive = []
        for pid in self._pids():
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            if _alive(proc):
                alive.append(proc)
        return alive

    def _cpu_s(self) -> float:
        try:
            text = (self._dir / "cpu.stat").read_text()
        except FileNotFoundError as exc:
            raise InstanceGoneError(f"cgroup {self._dir} is gone") from exc
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        return 0.0

    def _io(self, procs: list[psutil.Process]) -> tuple[int, int]:
        path = self._dir / "io.stat"
        if path.is_file():
            read = write = 0
            for line in path.read_text().splitlines():
                for field in line.split()[1:]:
                    key, _, value = field.partition("=")
                    if key == "rbytes":
                        read += int(value)
                    elif key == "wbytes":
                        write += int(value)
            return read, write
        read = write = 0
        for proc in procs:
            try:
                io = proc.io_counters()
            except _GONE:
                continue
            read, write = read + io.read_bytes, write + io.write_bytes
        return read, write

    def _memory(self, procs: list[psutil.Process]) -> int:
        path = self._dir / "memory.current"
        if path.is_file():
            return int(path.read_text())
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except _GONE:
                continue
        return total

    def sample(self) -> ResourceSample:
        """Measure the cgroup now."""
        mono = time.monotonic()
        procs = self.processes()
        cpu = self._cpu_s()
        read, write = self._io(procs)
        net = (0, 0)
        for proc in procs:
            try:
                net = read_netns_bytes(proc.pid)
                break
            except InstanceGoneError:
                continue
        now = _Counters(mono, cpu, read, write, *net)
        last, self._last = self._last, now
        elapsed = mono - last.at_monotonic if last else 0.0
        return ResourceSample(
            timestamp=self._clock(),
            cpu_util=_rate(cpu, last.cpu_s if last else None, elapsed) / self._cores,
            memory_bytes=self._memory(procs),
            net_rx_bps=_rate(net[0], last.net_rx if last else None, elapsed),
            net_tx_bps=_rate(net[1], last.net_tx if last else None, elapsed),
            disk_read_bps=_rate(read, last.read_bytes if last else None, elapsed),
            disk_write_bps=_rate(write, last.write_bytes if last else None, elapsed),
        )
