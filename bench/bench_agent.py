"""The Resource Mirroring Agent's own CPU while mirroring a mutating 256 MB state every 10 s (issue 6, item 4).

Setup, all in this script: a state directory of 16 files x 16 MiB of random bytes; an *instance*
subprocess that mutates it (``--mutate-kib`` KiB of random 64 KiB blocks at random offsets each second,
in the first ``--hot-files`` files: all 16 by default, so every file changes between snapshots — the
worst case for the incremental ``dir`` capture) and is the process tree the agent samples; the agent in
this process (process-tree sampler every ``--sample-interval-s``, ``dir`` capture, snapshot every
``--interval-s``) for ``--duration-s`` seconds.

What is measured: this process's CPU time (user + system, ``resource.getrusage(RUSAGE_SELF)``; the
instance runs in another process and is not counted) over the run, as a fraction of one core, split by
measuring each part's thread CPU time (``time.thread_time``) around the calls: sampling, capture (the
staging copy, i.e. the ``dir`` backend's consistent copy), upload (the uploader, in the calling thread),
and the rest (scheduler, thread starts, logging — and, with the real client, its worker threads, so
the "agent own" figure is then an upper bound). Target: the agent's own part (everything but the uploader) well
under 10 % of one core.

Uploader: the fake (``tests.fakes.fake_snapshot_uploader``; it only walks and stats the files) until
the store branch is merged. WHERE THE REAL CLIENT PLUGS IN: ``make_uploader`` below; after the merge run
with ``--store-url http://127.0.0.1:PORT --store-token-file F`` against a running ``mirrortwin store
serve`` and the upload column becomes the client's chunking (fastcdc), compression and hashing cost.

Usage: ``PYTHONPATH=. .venv/bin/python bench/bench_agent.py [--duration-s 60] [--interval-s 10]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realworld.agent.agent import MirroringAgent  # noqa: E402
from realworld.agent.capture import DirCapture  # noqa: E402
from realworld.agent.sampler import ProcessTreeSampler  # noqa: E402
from realworld.agent.uploader import Retention, SnapshotInfo  # noqa: E402

FILES, FILE_MIB = 16, 16

MUTATOR = r"""
import os, random, sys, time
root, kib, seconds, hot = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
files = sorted(os.path.join(root, f) for f in os.listdir(root))[:hot]
rng = random.Random(0)
end = time.time() + seconds
while time.time() < end:
    for _ in range(max(1, kib // 64)):
        path = rng.choice(files)
        with open(path, "r+b") as f:
            f.seek(rng.randrange(0, os.path.getsize(path) - 65536))
            f.write(os.urandom(65536))
    time.sleep(1.0)
"""


class ThreadCpu:
    """Sums the calling threads' CPU time spent inside timed calls (thread-safe)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self.seconds += time.thread_time() - t0
                self.calls += 1


class TimedSampler:
    def __init__(self, inner: ProcessTreeSampler, cpu: ThreadCpu) -> None:
        self._inner, self._cpu = inner, cpu

    def sample(self) -> Any:
        return self._cpu.timed(self._inner.sample)

    def processes(self) -> Any:
        return self._inner.processes()


class TimedCapture:
    name = "dir"
    reuses_previous = True

    def __init__(self, inner: DirCapture, cpu: ThreadCpu) -> None:
        self._inner, self._cpu = inner, cpu

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        return self._cpu.timed(self._inner.capture, out_dir, instance_id=instance_id, pid=pid)


class TimedUploader:
    def __init__(self, inner: Any, cpu: ThreadCpu) -> None:
        self._inner, self._cpu = inner, cpu

    def upload_directory(self, instance_id: str, root: Path, **kwargs: Any) -> SnapshotInfo:
        return self._cpu.timed(self._inner.upload_directory, instance_id, root, **kwargs)


def make_uploader(args: argparse.Namespace) -> Any:
    """The fake by default; the real Mirror Store client when ``--store-url`` is given (after the merge)."""
    if args.store_url:
        from realworld.store.client import MirrorStoreClient  # type: ignore[import-not-found]

        return MirrorStoreClient(args.store_url, token=Path(args.store_token_file).read_text().strip())
    from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader

    return FakeSnapshotUploader(keep_bytes=False)


@contextlib.contextmanager
def running_store() -> Any:
    """The store bench's real Mirror Store (pinned to core 0) with one tenant; yields (url, token file)."""
    import bench_store  # bench/ is this script's folder, so it is on sys.path

    work = Path(tempfile.mkdtemp(prefix="bench-agent-store-"))
    try:
        (work / "token").write_text(bench_store.TOKEN)
        with bench_store.store_server(work / "data", work) as url:
            yield url, str(work / "token")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-agent-", dir=args.work_dir))
    state = work / "state"
    state.mkdir()
    try:
        for i in range(FILES):
            (state / f"part-{i:02d}.bin").write_bytes(os.urandom(FILE_MIB << 20))
        mutator = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MUTATOR,
                str(state),
                str(args.mutate_kib),
                str(args.duration_s + 30),
                str(args.hot_files),
            ]
        )
        parts = {name: ThreadCpu() for name in ("sampling", "capture", "upload")}
        agent = MirroringAgent(
            "bench-256mb",
            sampler=TimedSampler(ProcessTreeSampler(mutator.pid, cores=1), parts["sampling"]),
            capture=TimedCapture(DirCapture(state), parts["capture"]),
            uploader=TimedUploader(make_uploader(args), parts["upload"]),
            interval_s=args.interval_s,
            retention=Retention(keep_last=10),
            sample_interval_s=args.sample_interval_s,
            work_dir=work,
        )
        try:
            wall0, cpu0 = time.monotonic(), cpu_s()
            agent.start(first_snapshot_now=True)
            time.sleep(args.duration_s)
            agent.stop()
            wall, cpu = time.monotonic() - wall0, cpu_s() - cpu0
        finally:
            mutator.kill()
            mutator.wait()
        c = agent.counters()
        own = cpu - parts["upload"].seconds
        return {
            "duration_s": round(wall, 1),
            "interval_s": args.interval_s,
            "state_mib": FILES * FILE_MIB,
            "hot_files": args.hot_files,
            "snapshots_ok": c.snapshots_ok,
            "snapshots_failed": c.snapshots_failed,
            "snapshots_skipped": c.snapshots_skipped,
            "samples": c.samples_taken,
            "process_cpu_s": round(cpu, 3),
            "sampling_cpu_s": round(parts["sampling"].seconds, 3),
            "capture_cpu_s": round(parts["capture"].seconds, 3),
            "upload_cpu_s": round(parts["upload"].seconds, 3),
            "other_cpu_s": round(cpu - sum(p.seconds for p in parts.values()), 3),
            "agent_own_core_fraction": round(own / wall, 4),
            "upload_core_fraction": round(parts["upload"].seconds / wall, 4),
            "mean_capture_wall_s": round(c.capture_seconds_total / max(1, c.snapshots_ok + c.snapshots_failed), 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--interval-s", type=float, default=10.0)
    parser.add_argument("--sample-interval-s", type=float, default=1.0)
    parser.add_argument("--mutate-kib", type=int, default=1024, help="KiB rewritten per second (default 1024)")
    parser.add_argument(
        "--hot-files",
        type=int,
        default=FILES,
        help=f"files the mutations land in (default: all {FILES}, the worst case)",
    )
    parser.add_argument("--work-dir", type=Path, help="where the state and staging copies live (default: temp)")
    parser.add_argument("--store-url", help="a running Mirror Store to upload into (default: the fake uploader)")
    parser.add_argument("--store-token-file", help="its tenant token file")
    parser.add_argument(
        "--real-store", action="store_true", help="start a real `mirrortwin store serve` for the run and use it"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.real_store:
            args.store_url, args.store_token_file = stack.enter_context(running_store())
        result = run(args)
    print(json.dumps(result, indent=2))
    print(
        f"agent own CPU: {100 * result['agent_own_core_fraction']:.2f} % of one core "
        f"(sampling {result['sampling_cpu_s']} s, capture {result['capture_cpu_s']} s, other {result['other_cpu_s']} s "
        f"over {result['duration_s']} s); uploader {100 * result['upload_core_fraction']:.2f} %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
