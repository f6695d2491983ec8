"""The live ``InstanceProvider`` port: instances are local processes, each inside its IVN's namespace.

An application is described once by an :class:`AppTemplate` (argv with placeholders, a health probe,
how to restore a mirror snapshot into a data directory, how to catch up with the source, and its
resource footprint). :class:`LocalProcessProvider` launches the initial instances, creates replacements
from mirror snapshots in another IVN, decommissions, and accounts capacity per IVN "host".

What a same-IVN live migration means here: on one machine an IVN's "hosts" are resource slots, not
machines. :meth:`LocalProcessProvider.live_migrate` re-accounts the instance's cores and memory to the
target slot and, when slots have CPU sets, re-pins the process's threads onto the target's CPUs; the
process is never restarted and no state is copied. It says so in the log and in the docs
(``docs/realworld-network.md``) rather than pretending a copy happened.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from policies.records import MirrorSnapshot, Move
from realworld.haproxy import free_tcp_port
from realworld.ivn import IvnNetworks
from realworld.operations import FutureOperation, OperationRunner, completed
from realworld.redis_app import RedisEndpoint, is_healthy

logger = logging.getLogger(__name__)

_PLACEHOLDERS = ("instance_id", "address", "port", "data_dir")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ProviderError(RuntimeError):
    """Launching, restoring or stopping an instance failed; the message names the instance and the step."""


# ----------------------------------------------------------------------------------------- probes


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Healthy when a TCP connection to the instance's address and port succeeds."""

    timeout_s: float = 1.0

    def __call__(self, address: str, port: int) -> bool:
        """Return whether the instance at ``address:port`` passes this probe now."""
        try:
            with socket.create_connection((address, port), timeout=self.timeout_s):
                return True
        except OSError:
            return False


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """Healthy when ``GET http://address:port{path}`` answers ``expect_status``."""

    path: str = "/"
    expect_status: int = 200
    timeout_s: float = 2.0

    def __call__(self, address: str, port: int) -> bool:
        """Return whether the instance at ``address:port`` passes this probe now."""
        try:
            with urllib.request.urlopen(f"http://{address}:{port}{self.path}", timeout=self.timeout_s) as response:
                return int(response.status) == self.expect_status
        except (OSError, urllib.error.URLError):
            return False


@dataclass(frozen=True, slots=True)
class RedisPingProbe:
    """Healthy when the instance answers ``PING`` with ``PONG``."""

    timeout_s: float = 2.0

    def __call__(self, address: str, port: int) -> bool:
        """Return whether the instance at ``address:port`` passes this probe now."""
        return is_healthy(RedisEndpoint(address, port), timeout_s=self.timeout_s)


@dataclass(frozen=True, slots=True)
class CommandProbe:
    """Healthy when ``argv`` (placeholders ``{address}`` and ``{port}``) exits 0 within ``timeout_s``."""

    argv: Sequence[str]
    timeout_s: float = 5.0

    def __call__(self, address: str, port: int) -> bool:
        """Return whether the instance at ``address:port`` passes this probe now."""
        argv = [part.format(address=address, port=port) for part in self.argv]
        try:
            return subprocess.run(argv, capture_output=True, timeout=self.timeout_s).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False


HealthProbe = TcpProbe | HttpProbe | RedisPingProbe | CommandProbe


# ----------------------------------------------------------------------------------------- records


InstanceState = Literal["starting", "running", "exited", "stopping"]


@dataclass(slots=True)
class InstanceRecord:
    """One instance as the provider knows it (what the live telemetry adapter reads via ``inventory``).

    Attributes:
        instance_id: The instance's id (replacements: ``"<base>@<ivn>#<n>"``).
        ivn: The IVN it runs in.
        host: The IVN "host" slot its resources are accounted to.
        address: Address it listens on (its IVN's instance address).
        port: Port it listens on.
        pid: Its process id (the program's own: ``ip netns exec`` execs it).
        data_dir: Its state directory.
        state: ``starting``, ``running``, ``exited`` (died on its own) or ``stopping``.
        template: Name of its :class:`AppTemplate`.
    """

    instance_id: str
    ivn: str
    host: str
    address: str
    port: int
    pid: int
    data_dir: Path
    state: InstanceState
    template: str


Restore = Callable[[MirrorSnapshot, Path], None]
CatchUp = Callable[[InstanceRecord, InstanceRecord], None]


@dataclass(frozen=True, slots=True)
class AppTemplate:
    """How to run one application as a local process.

    Attributes:
        name: The application's name (for logs and records).
        argv: Command line; ``{instance_id}``, ``{address}``, ``{port}``, ``{data_dir}`` are filled in.
        probe: Health probe run from the root namespace against the instance's address and port.
        restore: Writes a mirror snapshot's state into a fresh data directory (the composition root passes
            the Mirror Store client's restore; tests a directory copy). ``None``: snapshots cannot be
            restored and only snapshot-less (copy from the source) creation works.
        catch_up: Brings a freshly restored replacement level with its still-running source (Redis:
            replicate until in sync). ``None``: the restored state is used as it is.
        cpu_cores: Cores it is accounted for in its host's budget.
        memory_bytes: Memory it is accounted for.
        start_timeout_s: How long a start may take until the probe passes.
        stop_grace_s: How long SIGTERM gets before SIGKILL.
    """

    name: str
    argv: Sequence[str]
    probe: HealthProbe = field(default_factory=TcpProbe)
    restore: Restore | None = None
    catch_up: CatchUp | None = None
    cpu_cores: float = 1.0
    memory_bytes: int = 256 * 2**20
    start_timeout_s: float = 30.0
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        """Reject templates that could not start, naming the field."""
        if not self.argv:
            raise ValueError(f"AppTemplate {self.name!r}: argv is empty")
        for part in self.argv:
            try:
                part.format(**dict.fromkeys(_PLACEHOLDERS, ""))
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"AppTemplate {self.name!r}: argv part {part!r} has a bad placeholder ({exc}); "
                    f"allowed: {', '.join('{' + name + '}' for name in _PLACEHOLDERS)}"
                ) from None
        if not (math.isfinite(self.cpu_cores) and self.cpu_cores > 0):
            raise ValueError(f"AppTemplate {self.name!r}: cpu_cores must be > 0, got {self.cpu_cores!r}")
        if self.memory_bytes <= 0:
            raise ValueError(f"AppTemplate {self.name!r}: memory_bytes must be > 0, got {self.memory_bytes!r}")


@dataclass(frozen=True, slots=True)
class HostBudget:
    """Resources of one IVN "host" slot on this machine (what ``has_capacity`` checks against).

    Attributes:
        cpu_cores: Cores the slot offers to instances.
        memory_bytes: Memory the slot offers.
        cpus: CPU numbers the slot's processes are pinned to (every thread, via ``sched_setaffinity``);
            empty means no pinning. With CPUs, a same-IVN live migration really moves the process onto
            the target slot's CPUs.
    """

    cpu_cores: float
    memory_bytes: int
    cpus: tuple[int, ...] = ()


@dataclass(slots=True)
class _Running:
    record: InstanceRecord
    template: AppTemplate
    process: subprocess.Popen[bytes]
    log_path: Path


# ----------------------------------------------------------------------------------------- provider


class LocalProcessProvider:
    """Implements :class:`policies.ports.InstanceProvider` with local processes in IVN namespaces.

    Args:
        networks: The IVNs (created) the instances run in.
        workdir: Where data directories (``data/<id>``) and logs (``logs/<id>.log``) go.
        capacity: Per IVN, its host slots and their budgets.
        on_replacement: Called with ``(instance_id, replacement_record)`` once a replacement is healthy and
            caught up, before the creation operation completes; the composition root wires it to
            ``HAProxyLoadBalancer.register_backend`` so the LB knows the replacement's address.
        restore_bandwidth_bps: Bytes per second a restore is assumed to write, for estimates, until
            measured restores replace it.
        start_to_healthy_s: Assumed time from start to a passing probe, until measured.
        runner: Thread pool for operations (created and closed here when not given).
    """

    def __init__(
        self,
        networks: IvnNetworks,
        workdir: Path,
        capacity: Mapping[str, Mapping[str, HostBudget]],
        *,
        on_replacement: Callable[[str, InstanceRecord], None] | None = None,
        restore_bandwidth_bps: float = 200e6,
        start_to_healthy_s: float = 2.0,
        runner: OperationRunner | None = None,
    ) -> None:
        usable = os.sched_getaffinity(0)
        for ivn, hosts in capacity.items():
            networks.addresses(ivn)  # raises naming an unknown IVN
            for host, budget in hosts.items():
                if not set(budget.cpus) <= usable:
                    raise ValueError(
                        f"capacity[{ivn!r}][{host!r}].cpus: {sorted(set(budget.cpus) - usable)} not usable here "
                        f"(this process may use {sorted(usable)})"
                    )
        self.networks = networks
        self.workdir = Path(workdir)
        self.capacity = {ivn: dict(hosts) for ivn, hosts in capacity.items()}
        self.on_replacement = on_replacement
        self.restore_bandwidth_bps = restore_bandwidth_bps
        self.start_to_healthy_s = start_to_healthy_s
        self._own_runner = runner is None
        self._runner = runner or OperationRunner(max_workers=8, name="process-provider")
        self._lock = threading.RLock()
        self._instances: dict[str, _Running] = {}
        self._slots: dict[str, tuple[str, str, AppTemplate]] = {}  # id -> (ivn, host, template)
        self._templates: dict[str, AppTemplate] = {}  # instance id -> template (kept after decommission)
        self._counter = itertools.count(1)
        self._next_port: dict[str, int] = {}
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------------------------- capacity

    def _used(self, ivn: str, host: str) -> tuple[float, int]:
        with self._lock:
            slots = [
                template
                for slot_ivn, slot_host, template in self._slots.values()
                if (slot_ivn, slot_host) == (ivn, host)
            ]
        return sum(t.cpu_cores for t in slots), sum(t.memory_bytes for t in slots)

    def _fits(self, ivn: str, host: str, template: AppTemplate) -> bool:
        budget = self.capacity.get(ivn, {}).get(host)
        if budget is None:
            return False
        cores, memory = self._used(ivn, host)
        return (
            cores + template.cpu_cores <= budget.cpu_cores + 1e-9
            and memory + template.memory_bytes <= budget.memory_bytes
        )

    def _pick_host(self, ivn: str, template: AppTemplate, host: str | None) -> str | None:
        candidates = [host] if host is not None else sorted(self.capacity.get(ivn, {}))
        for candidate in candidates:
            if self._fits(ivn, candidate, template):
                return candidate
        return None

    def _reserve(self, instance_id: str, ivn: str, template: AppTemplate, host: str | None) -> str:
        with self._lock:
            if instance_id in self._slots:
                raise ProviderError(f"instance {instance_id!r} already exists")
            if ivn not in self.capacity:
                raise ProviderError(f"ivn: {ivn!r} has no capacity configured (known: {sorted(self.capacity)})")
            chosen = self._pick_host(ivn, template, host)
            if chosen is None:
                where = f"host {host!r} of IVN {ivn!r}" if host else f"any host of IVN {ivn!r}"
                raise ProviderError(f"no capacity for {instance_id!r} ({template.name}) on {where}")
            self._slots[instance_id] = (ivn, chosen, template)
            self._templates[instance_id] = template
            return chosen

    def _release(self, instance_id: str) -> None:
        with self._lock:
            self._slots.pop(instance_id, None)

    def has_capacity(self, ivn: str, instance_id: str) -> bool:
        """Return whether some host of ``ivn`` can take another copy of ``instance_id``'s template."""
        template = self._templates.get(instance_id)
        if template is None or ivn not in self.capacity:
            logger.info("has_capacity(%s, %s): unknown instance or IVN", ivn, instance_id)
            return False
        with self._lock:
            return self._pick_host(ivn, template, None) is not None

    def estimate_migration_s(self, instance_id: str, ivn: str) -> float:
        """Restore time of the source's current state size at the restore bandwidth, plus start-to-healthy.

        The state size is the source's data directory now (the best local proxy for the snapshot size);
        both rates are the configured ones until measured creations update them.
        """
        running = self._instances.get(instance_id)
        size = _tree_size(running.record.data_dir) if running else 0
        return size / self.restore_bandwidth_bps + self.start_to_healthy_s

    # ----------------------------------------------------------------------------------- start/stop

    def _allocate_port(self, ivn: str, address: str) -> int:
        if self.networks.addresses(ivn).namespace is None:
            return free_tcp_port(address)  # fallback: shared loopback, ask the kernel
        with self._lock:  # our own namespace: nothing else listens there, a counter is enough
            used = {r.record.port for r in self._instances.values() if r.record.ivn == ivn}
            port = self._next_port.get(ivn, 20000)
            while port in used:
                port += 1
            self._next_port[ivn] = port + 1
            return port

    def _start(self, instance_id: str, template: AppTemplate, ivn: str, host: str, data_dir: Path) -> _Running:
        addresses = self.networks.addresses(ivn)
        port = self._allocate_port(ivn, addresses.instance_address)
        values = {"instance_id": instance_id, "address": addresses.instance_address, "port": port, "data_dir": data_dir}
        argv = [part.format(**values) for part in template.argv]
        log_path = self.workdir / "logs" / f"{_safe(instance_id)}.log"
        with log_path.open("ab") as log:
            try:
                process = self.networks.run_in(
                    ivn, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                raise ProviderError(f"starting {instance_id!r}: `{' '.join(argv)}` failed: {exc}") from exc
        record = InstanceRecord(
            instance_id, ivn, host, addresses.instance_address, port, process.pid, data_dir, "starting", template.name
        )
        running = _Running(record, template, process, log_path)
        with self._lock:
            self._instances[instance_id] = running
        logger.info(
            "started %s (%s) in IVN %s at %s:%d, pid %d",
            instance_id,
            template.name,
            ivn,
            record.address,
            port,
            process.pid,
        )
        return running

    def _wait_healthy(self, running: _Running) -> float:
        started = time.monotonic()
        deadline = started + running.template.start_timeout_s
        record = running.record
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise ProviderError(
                    f"{record.instance_id!r} exited with status {running.process.returncode} before becoming healthy: "
                    f"{_tail(running.log_path)}"
                )
            if running.template.probe(record.address, record.port):
                record.state = "running"
                return time.monotonic() - started
            time.sleep(0.05)
        raise ProviderError(
            f"{record.instance_id!r} not healthy within {running.template.start_timeout_s:g} s "
            f"({type(running.template.probe).__name__} on {record.address}:{record.port}): {_tail(running.log_path)}"
        )

    def launch(self, instance_id: str, template: AppTemplate, ivn: str, host: str | None = None) -> InstanceRecord:
        """Start an initial instance (empty or pre-filled data dir) and wait until it is healthy.

        Blocking on purpose: the composition root builds the fleet before the controller runs.

        Raises:
            ProviderError: When there is no capacity, the process exits, or the probe never passes.
        """
        chosen = self._reserve(instance_id, ivn, template, host)
        data_dir = self.workdir / "data" / _safe(instance_id)
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            running = self._start(instance_id, template, ivn, chosen, data_dir)
            self._wait_healthy(running)
            self._pin(running)
        except BaseException:
            self._stop(instance_id, remove_data=False)
            raise
        return replace(running.record)

    def create_from_snapshot(
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> FutureOperation[str]:
        """Start a replacement of ``instance_id`` in ``ivn``: restore, start, probe, catch up, announce.

        The slot is reserved at once (so a second ``has_capacity`` sees it); the rest runs in a thread.
        Without a snapshot the source's data directory is copied as it is (a cold copy; ``catch_up``
        then closes the gap). Any failure stops the replacement, removes its data and frees its slot.
        """
        base = instance_id.split("@", 1)[0]
        replacement = f"{base}@{ivn}#{next(self._counter)}"
        label = f"create {replacement} from {'snapshot' if snapshot else 'source copy'}"
        source = self._instances.get(instance_id)
        if source is None:
            return self._failed(label, ProviderError(f"create_from_snapshot: unknown instance {instance_id!r}"))
        try:
            chosen = self._reserve(replacement, ivn, source.template, host)
        except ProviderError as exc:
            return self._failed(label, exc)
        return self._runner.start(label, self._create, source, replacement, snapshot, ivn, chosen)

    @staticmethod
    def _failed(label: str, error: Exception) -> FutureOperation[str]:
        operation: FutureOperation[str] = FutureOperation(label)
        operation.set_exception(error)
        return operation

    def _create(self, source: _Running, replacement: str, snapshot: MirrorSnapshot | None, ivn: str, host: str) -> str:
        template = source.template
        data_dir = self.workdir / "data" / _safe(replacement)
        try:
            data_dir.mkdir(parents=True)
            restore_started = time.monotonic()
            if snapshot is not None:
                if template.restore is None:
                    raise ProviderError(
                        f"restoring {replacement!r}: template {template.name!r} has no restore function"
                    )
                try:
                    template.restore(snapshot, data_dir)
                except Exception as exc:
                    raise ProviderError(
                        f"restoring {replacement!r} from snapshot at {snapshot.timestamp}: {exc}"
                    ) from exc
            else:
                shutil.copytree(source.record.data_dir, data_dir, dirs_exist_ok=True)
            restore_s = time.monotonic() - restore_started
            restored_bytes = _tree_size(data_dir)
            running = self._start(replacement, template, ivn, host, data_dir)
            healthy_s = self._wait_healthy(running)
            self._pin(running)
            if template.catch_up is not None:
                try:
                    template.catch_up(replace(source.record), replace(running.record))
                except Exception as exc:
                    raise ProviderError(
                        f"catching {replacement!r} up with {source.record.instance_id!r}: {exc}"
                    ) from exc
            self._learn(restored_bytes, restore_s, healthy_s)
            if self.on_replacement is not None:
                self.on_replacement(source.record.instance_id, replace(running.record))
        except BaseException:
            self._stop(replacement, remove_data=True)
            raise
        return replacement

    def _learn(self, restored_bytes: int, restore_s: float, healthy_s: float) -> None:
        """Fold a measured creation into the estimates (EMA), so later estimates follow this machine."""
        with self._lock:
            if restored_bytes > 2**20 and restore_s > 0:
                self.restore_bandwidth_bps = 0.5 * self.restore_bandwidth_bps + 0.5 * restored_bytes / restore_s
            self.start_to_healthy_s = 0.5 * self.start_to_healthy_s + 0.5 * healthy_s

    def decommission(self, instance_id: str) -> FutureOperation[None]:
        """Stop ``instance_id`` (SIGTERM, then SIGKILL after its grace), remove its data and free its slot."""
        if instance_id not in self._instances:
            failed: FutureOperation[None] = FutureOperation(f"decommission {instance_id}")
            failed.set_exception(ProviderError(f"decommission: unknown instance {instance_id!r}"))
            return failed
        return self._runner.start(f"decommission {instance_id}", self._stop, instance_id, remove_data=True)

    def _stop(self, instance_id: str, *, remove_data: bool) -> None:
        with self._lock:
            running = self._instances.pop(instance_id, None)
        if running is not None:
            running.record.state = "stopping"
            _terminate(running.process, running.template.stop_grace_s)
            logger.info("stopped %s (pid %d, status %s)", instance_id, running.process.pid, running.process.returncode)
            if remove_data:
                shutil.rmtree(running.record.data_dir, ignore_errors=True)
        elif remove_data:
            shutil.rmtree(self.workdir / "data" / _safe(instance_id), ignore_errors=True)
        self._release(instance_id)

    def live_migrate(self, moves: Sequence[Move]) -> Sequence[FutureOperation[bool]]:
        """Move each instance to its target host slot in the same IVN: re-account, and re-pin when pinned.

        On one machine an IVN's hosts are resource slots. The instance's cores and memory are accounted
        to the target slot; when the slot has ``cpus``, every thread of the process is re-pinned onto
        them, so the process really runs elsewhere afterwards. The process is never restarted and no
        state is copied (same pid, address, port, memory). A move is refused (False) when the target is
        another IVN (that is the migration workflow's job), the host is unknown or full, or the
        instance is unknown.
        """
        results: list[FutureOperation[bool]] = []
        for move in moves:
            label = f"live-migrate {move.instance_id} -> {move.target_host}"
            with self._lock:
                slot = self._slots.get(move.instance_id)
                running = self._instances.get(move.instance_id)
                ok = (
                    slot is not None
                    and move.target_ivn == slot[0]
                    and move.target_host is not None
                    and (move.target_host == slot[1] or self._fits(slot[0], move.target_host, slot[2]))
                )
                if ok and slot is not None and move.target_host is not None:
                    self._slots[move.instance_id] = (slot[0], move.target_host, slot[2])
                    if running is not None:
                        running.record.host = move.target_host
            cpus = self._pin(running) if ok and running is not None else ()
            what = f"re-pinned to CPUs {list(cpus)}" if cpus else "slot re-accounted only; the process was not moved"
            logger.info("%s: %s (%s; no state copied)", label, "done" if ok else "refused", what)
            results.append(completed(label, ok))
        return results

    def _pin(self, running: _Running) -> tuple[int, ...]:
        """Pin every thread of the instance to its host slot's CPUs; return them (empty: no pinning).

        Threads are pinned one by one (``/proc/<pid>/task``) because affinity is per thread; threads and
        children created later inherit it. Called once the instance is healthy, when its threads exist.
        """
        record = running.record
        cpus = self.capacity[record.ivn][record.host].cpus
        if not cpus:
            return ()
        try:
            tasks = [int(task) for task in os.listdir(f"/proc/{record.pid}/task")]
        except FileNotFoundError:
            return ()
        for task in tasks:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(task, cpus)
        return cpus

    # ----------------------------------------------------------------------------------- observation

    def inventory(self) -> list[InstanceRecord]:
        """Copies of every instance's record; processes that died on their own are reaped and marked ``exited``."""
        with self._lock:
            runnings = list(self._instances.values())
        records = []
        for running in runnings:
            if running.process.poll() is not None and running.record.state != "stopping":
                running.record.state = "exited"
            records.append(replace(running.record))
        return records

    def record(self, instance_id: str) -> InstanceRecord:
        """A copy of one instance's record.

        Raises:
            ProviderError: Naming the id when it is unknown.
        """
        running = self._instances.get(instance_id)
        if running is None:
            raise ProviderError(f"unknown instance {instance_id!r}")
        return replace(running.record)

    def close(self, *, remove_data: bool = False) -> None:
        """Stop every instance (and the operation threads); data directories stay unless ``remove_data``."""
        for instance_id in list(self._instances):
            self._stop(instance_id, remove_data=remove_data)
        if self._own_runner:
            self._runner.close(wait=True)

    def __enter__(self) -> LocalProcessProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, wait ``grace_s``, SIGKILL it, and reap the child."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children it forked (e.g. a Redis BGSAVE) go too
        os.killpg(process.pid, signal.SIGKILL)


def _safe(instance_id: str) -> str:
    return _ID_UNSAFE.sub("_", instance_id)


def _tree_size(path: Path) -> int:
    total = 0
    for file in path.rglob("*") if path.exists() else ():
        with contextlib.suppress(OSError):
            if file.is_file():
                total += file.stat().st_size
    return total


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip() or "(no output)"
    except OSError:
        return "(no log)"
