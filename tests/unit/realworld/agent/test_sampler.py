"""The samplers measured on real child processes: the numbers move the right way."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from realworld.agent.sampler import InstanceGoneError, ProcessTreeSampler, read_netns_bytes

BURN = "import time\nt = time.time()\nwhile time.time() - t < 20: pass\n"
ALLOCATE = "import sys, time\nx = bytearray(200 << 20)\nsys.stdout.write('ok\\n'); sys.stdout.flush()\ntime.sleep(20)\n"
WRITE = (
    "import os, sys, time\n"
    "f = open(sys.argv[1], 'wb')\n"
    "for _ in range(200):\n"
    "    f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno()); time.sleep(0.05)\n"
)
# A parent that starts a burning child and a short-lived child, then waits: the tree has 3 processes.
TREE = (
    "import subprocess, sys, time\n"
    f"burn = subprocess.Popen([sys.executable, '-c', {BURN!r}])\n"
    "short = subprocess.Popen(['sleep', '0.5'])\n"
    "short.wait()\n"
    "time.sleep(20)\n"
)


@pytest.fixture
def spawn() -> Iterator:
    started: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _settled(sampler: ProcessTreeSampler, seconds: float = 1.0):
    sampler.sample()
    time.sleep(seconds)
    return sampler.sample()


def test_busy_process_shows_cpu_and_idle_one_does_not(spawn) -> None:
    busy = spawn(BURN)
    idle = spawn("import time\ntime.sleep(20)\n")
    busy_sample = _settled(ProcessTreeSampler(busy.pid, cores=1))
    idle_sample = _settled(ProcessTreeSampler(idle.pid, cores=1))
    assert busy_sample.cpu_util > 0.3  # it competes for 2 shared cores, so not 1.0
    assert idle_sample.cpu_util < 0.05
    assert busy_sample.cpu_util > idle_sample.cpu_util


def test_cpu_util_is_a_fraction_of_the_cores_allotted(spawn) -> None:
    busy = spawn(BURN)
    one = ProcessTreeSampler(busy.pid, cores=1)
    four = ProcessTreeSampler(busy.pid, cores=4)
    one.sample(), four.sample()
    time.sleep(1.0)
    a, b = one.sample(), four.sample()
    assert b.cpu_util == pytest.approx(a.cpu_util / 4, rel=0.3)


def test_memory_grows_with_an_allocation(spawn) -> None:
    small = spawn("import time\ntime.sleep(20)\n")
    big = spawn(ALLOCATE)
    assert big.stdout is not None and big.stdout.readline() == b"ok\n"
    small_bytes = ProcessTreeSampler(small.pid).sample().memory_bytes
    big_bytes = ProcessTreeSampler(big.pid).sample().memory_bytes
    assert big_bytes - small_bytes > 150 << 20


def test_pss_is_available_and_of_the_same_order(spawn) -> None:
    big = spawn(ALLOCATE)
    assert big.stdout is not None and big.stdout.readline() == b"ok\n"
    pss = ProcessTreeSampler(big.pid, memory_metric="pss").sample().memory_bytes
    assert pss > 150 << 20


def test_disk_write_rate_moves_when_a_file_is_written(spawn, tmp_path: Path) -> None:
    writer = spawn(WRITE, str(tmp_path / "data.bin"))
    idle = spawn("import time\ntime.sleep(20)\n")
    assert _settled(ProcessTreeSampler(writer.pid)).disk_write_bps > 1 << 20
    assert _settled(ProcessTreeSampler(idle.pid)).disk_write_bps == 0


def test_tree_includes_descendants_and_survives_their_exit(spawn) -> None:
    parent = spawn(TREE)
    sampler = ProcessTreeSampler(parent.pid, cores=1)
    deadline = time.monotonic() + 10
    while len(sampler.processes()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    sampler.sample()
    time.sleep(1.0)  # the short child exits meanwhile
    sample = sampler.sample()
    assert sample.cpu_util > 0.3  # the burning grandchild's CPU counts for the root
    names = {p.name() for p in sampler.processes()}
    assert "sleep" not in names


def test_root_gone_is_one_clear_error(spawn) -> None:
    proc = spawn("pass")
    proc.wait()
    with pytest.raises(InstanceGoneError, match=str(proc.pid)):
        ProcessTreeSampler(proc.pid).sample()


def test_first_sample_reports_zero_rates(spawn) -> None:
    busy = spawn(BURN)
    first = ProcessTreeSampler(busy.pid).sample()
    assert (first.cpu_util, first.disk_write_bps, first.net_rx_bps) == (0.0, 0.0, 0.0)


def test_netns_counters_parse_and_exclude_loopback() -> None:
    rx, tx = read_netns_bytes(os.getpid())
    assert rx >= 0 and tx >= 0


def _cgroup2_root() -> Path | None:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    root = _cgroup2_root()
    if os.geteuid() != 0 or root is None:
        pytest.skip("needs root and a cgroup v2 hierarchy")
    path = root / f"mirrortwin-test-{os.getpid()}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {root}: {exc}")
    yield path
    parent_procs = root / "cgroup.procs"
    for pid in (path / "cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):
            parent_procs.write_text(pid)
    path.rmdir()


def test_cgroup_sampler_sees_cpu_and_memory_of_its_processes(spawn, cgroup_dir: Path) -> None:
    from realworld.agent.sampler import CgroupSampler

    busy = spawn(BURN)
    (cgroup_dir / "cgroup.procs").write_text(str(busy.pid))
    sampler = CgroupSampler(cgroup_dir, cores=1)
    sampler.sample()
    time.sleep(1.0)
    sample = sampler.sample()
    assert sample.cpu_util > 0.3
    assert sample.memory_bytes > 1 << 20
    assert [p.pid for p in sampler.processes()] == [busy.pid]
    with contextlib.suppress(OSError):
        (cgroup_dir.parent / "cgroup.procs").write_text(str(busy.pid))


def test_cgroup_sampler_refuses_a_plain_directory(tmp_path: Path) -> None:
    from realworld.agent.sampler import CgroupSampler

    with pytest.raises(InstanceGoneError, match="not a cgroup v2 directory"):
        CgroupSampler(tmp_path)
