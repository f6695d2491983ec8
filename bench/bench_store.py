"""Speed and dedup of the live Mirror Store (issue 6, acceptance 4, store half).

Runs the real ``mirrortwin store serve`` pinned to one core (``taskset -c 0``; the client and borg on
core 1) and measures:

* **ingest** of new, incompressible data: the client chunks, hashes and compresses ``--ingest-mb`` of
  random bytes *before* the clock starts, then posts the frames in 8 MiB batches; MB/s = raw bytes /
  wall time of the posts (HTTP, verification by decompress + blake3, batched fsync'ed writes). The
  store's own ``mirrorstore_ingest_seconds`` (verify + write, without HTTP receive) is shown beside it.
* **restore** of that snapshot with ``MirrorStoreClient.restore`` (server reads and verifies every chunk,
  client verifies again and writes the file): raw MB/s.
* **dedup** over ``--snapshots`` successive snapshots of a mutating ``--state-mb`` state (seeded numpy
  Generator): the state is 4 KiB pages, 40 % random (compressed heap, encrypted buffers), 30 % zero,
  30 % low-entropy text-like; between snapshots ``--dirty-pct`` % of pages are rewritten at random
  places, 1 MiB is appended and 64 KiB inserted at a random offset (shifting everything after it).
  Bytes stored = apparent size of every file under the store root vs under a borg repository
  (``borg init -e none``; ``borg create`` with borg's default compression lz4, and again with zstd,3).

Baselines in the same script: ``dd`` writing the same amount to the same filesystem with
``conv=fdatasync`` (raw disk write speed), and borg's own ingest time on the dedup series.

Usage: ``PYTHONPATH=. .venv/bin/python bench/bench_store.py [--ingest-mb 256] [--state-mb 256]
[--snapshots 10] [--work /tmp] [--markdown]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realworld.store.chunking import chunk_hash, compressor, iter_chunks  # noqa: E402
from realworld.store.client import MirrorStoreClient, Retention  # noqa: E402
from realworld.store.frames import encode_frame  # noqa: E402
from realworld.store.tenants import token_digest  # noqa: E402

TOKEN = "bench-token"
PAGE = 4096
MB = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def store_server(root: Path, work: Path) -> Iterator[str]:
    tenants = work / "tenants.toml"
    tenants.write_text(f'[tenants.bench]\ntoken_sha256 = "{token_digest(TOKEN)}"\n')
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        "taskset",
        "-c",
        "0",
        sys.executable,
        "-m",
        "mirrortwin",
        "store",
        "serve",
        "--root",
        str(root),
        "--tenants",
        str(tenants),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("store did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def apparent_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def dd_write_mb_s(work: Path, megabytes: int) -> float:
    target = work / "dd.bin"
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "dd",
            "if=/dev/zero",
            f"of={target}",
            "bs=4M",
            f"count={max(1, megabytes * MB // (4 << 20))}",
            "conv=fdatasync",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    target.unlink()
    copied, seconds = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", out).groups()
    return int(copied) / float(seconds) / MB


def bench_ingest_restore(url: str, work: Path, megabytes: int, rng: np.random.Generator) -> dict[str, float]:
    """One ingest + restore + agent-path run on fresh random data (new chunks every time)."""
    data = rng.bytes(megabytes * MB)
    source = work / "ingest-src"
    source.mkdir()
    (source / "random.bin").write_bytes(data)
    comp = compressor()
    hashes: list[str] = []
    frames: list[bytes] = []
    with open(source / "random.bin", "rb") as stream:
        for chunk in iter_chunks(stream):
            digest = chunk_hash(chunk)
            hashes.append(digest)
            frames.append(encode_frame(digest, comp.compress(chunk)))
    batches: list[list[bytes]] = [[]]
    size = 0
    for frame in frames:
        batches[-1].append(frame)
        size += len(frame)
        if size >= 8 << 20:
            batches.append([])
            size = 0
    client = MirrorStoreClient(url, TOKEN, timeout_s=120)
    started = time.perf_counter()
    client.send_frame_batches(batch for batch in batches if batch)
    ingest_wall = time.perf_counter() - started
    st = (source / "random.bin").stat()
    manifest = {
        "timestamp": time.time(),
        "files": [{"path": "random.bin", "mode": 0o644, "size": len(data), "mtime": st.st_mtime, "chunks": hashes}],
    }
    response = httpx.post(
        f"{url}/v1/instances/ingest/snapshots", json=manifest, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
    )
    response.raise_for_status()
    snapshot_id = response.json()["snapshot_id"]
    # A lean reader (http.client, counting bytes) so the figure is the store's, not httpx's: h11's pure-Python
    # parsing caps one httpx stream at roughly 250-500 MB/s here.
    started = time.perf_counter()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("GET", f"/v1/snapshots/{snapshot_id}/restore", headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    streamed = 0
    while block := response.read(1 << 20):
        streamed += len(block)
    conn.close()
    stream_wall = time.perf_counter() - started
    if streamed < len(data):
        raise SystemExit("restore stream was short")
    target = work / "restored"
    started = time.perf_counter()
    client.restore(snapshot_id, target)
    restore_wall = time.perf_counter() - started
    if (target / "random.bin").read_bytes() != data:
        raise SystemExit("restore was not byte-identical")
    shutil.rmtree(target)
    # The same restore into tmpfs: the client's own cost, without the disk that is still flushing the ingest.
    restore_tmpfs_wall = float("nan")
    if Path("/dev/shm").is_dir():
        target = Path(tempfile.mkdtemp(prefix="bench-store-restore-", dir="/dev/shm"))
        try:
            started = time.perf_counter()
            client.restore(snapshot_id, target)
            restore_tmpfs_wall = time.perf_counter() - started
        finally:
            shutil.rmtree(target)
    # The end-to-end agent path (chunk + hash + missing-check + compress + send + commit) for context.
    fresh = work / "ingest-src2"
    fresh.mkdir()
    (fresh / "random.bin").write_bytes(rng.bytes(megabytes * MB))
    started = time.perf_counter()
    MirrorStoreClient(url, TOKEN, timeout_s=120).upload_directory("ingest2", fresh, timestamp=time.time())
    upload_wall = time.perf_counter() - started
    shutil.rmtree(source)
    shutil.rmtree(fresh)
    raw = megabytes * MB / MB
    return {
        "ingest_mb_s": raw / ingest_wall,
        "restore_mb_s": raw / restore_wall,
        "restore_stream_mb_s": raw / stream_wall,
        "restore_tmpfs_mb_s": raw / restore_tmpfs_wall,
        "upload_directory_mb_s": raw / upload_wall,
        "chunks": float(len(hashes)),
    }


def make_state(rng: np.random.Generator, megabytes: int) -> np.ndarray:
    pages = megabytes * MB // PAGE
    state = np.zeros((pages, PAGE), dtype=np.uint8)
    kind = rng.choice(3, size=pages, p=[0.4, 0.3, 0.3])
    random_pages = np.flatnonzero(kind == 0)
    state[random_pages] = rng.integers(0, 256, size=(len(random_pages), PAGE), dtype=np.uint8)
    text_pages = np.flatnonzero(kind == 2)
    alphabet = np.frombuffer(b'etaoin shrdlu{}:,"0123456789\n', dtype=np.uint8)
    state[text_pages] = alphabet[rng.integers(0, len(alphabet), size=(len(text_pages), PAGE))]
    return state.reshape(-1)


def mutate(state: np.ndarray, rng: np.random.Generator, dirty_pct: float) -> np.ndarray:
    pages = len(state) // PAGE
    dirty = rng.choice(pages, size=int(pages * dirty_pct / 100), replace=False)
    view = state[: pages * PAGE].reshape(pages, PAGE)
    view[dirty] = rng.integers(0, 256, size=(len(dirty), PAGE), dtype=np.uint8)
    insert_at = int(rng.integers(0, len(state)))
    inserted = rng.integers(0, 256, size=64 * 1024, dtype=np.uint8)
    appended = rng.integers(0, 256, size=1 << 20, dtype=np.uint8)
    return np.concatenate([state[:insert_at], inserted, state[insert_at:], appended])


def borg_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BORG_BASE_DIR": str(work / "borg-home"),
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING": "YES",
    }


def bench_dedup(url: str, store_root: Path, work: Path, args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    state = make_state(rng, args.state_mb)
    state_dir = work / "state"
    state_dir.mkdir()
    env = borg_env(work)
    repos = {"lz4 (borg default)": work / "borg-lz4", "zstd,3": work / "borg-zstd"}
    for repo in repos.values():
        subprocess.run(["borg", "init", "-e", "none", str(repo)], env=env, check=True, capture_output=True)
    client = MirrorStoreClient(url, TOKEN, timeout_s=120)
    before_bytes = apparent_bytes(store_root)
    ours_s = 0.0
    borg_s = {name: 0.0 for name in repos}
    sent = 0
    logical = 0
    for index in range(args.snapshots):
        if index:
            state = mutate(state, rng, args.dirty_pct)
        (state_dir / "memory.img").write_bytes(state.tobytes())
        logical += len(state)
        started = time.perf_counter()
        info = client.upload_directory("dedup", state_dir, timestamp=time.time(), retention=Retention(keep_last=100))
        ours_s += time.perf_counter() - started
        sent += info.sent_bytes
        for name, repo in repos.items():
            compression = [] if name.startswith("lz4") else ["--compression", "zstd,3"]
            started = time.perf_counter()
            subprocess.run(
                ["taskset", "-c", "1", "borg", "create", *compression, f"{repo}::s{index}", "."],
                cwd=state_dir,
                env=env,
                check=True,
                capture_output=True,
            )
            borg_s[name] += time.perf_counter() - started
    ours = apparent_bytes(store_root) - before_bytes
    result: dict[str, object] = {
        "logical_mb": logical / MB,
        "ours_mb": ours / MB,
        "ours_sent_mb": sent / MB,
        "ours_s": ours_s,
    }
    for name, repo in repos.items():
        result[f"borg {name} mb"] = apparent_bytes(repo) / MB
        result[f"borg {name} s"] = borg_s[name]
    shutil.rmtree(state_dir)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-mb", type=int, default=256)
    parser.add_argument("--state-mb", type=int, default=256)
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--dirty-pct", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=3, help="speed runs (median reported)")
    parser.add_argument("--skip-dedup", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print a bench/RESULTS.md section too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.work))
    runs: list[dict[str, float]] = []
    try:
        store_root = work / "store"
        with store_server(store_root, work) as url:
            rng = np.random.default_rng(args.seed)
            for _ in range(args.repeat):
                # dd right before each run, so baseline and store see the same (shared, noisy) disk.
                dd = dd_write_mb_s(work, args.ingest_mb)
                runs.append({"dd": dd, **bench_ingest_restore(url, work, args.ingest_mb, rng)})
            dedup = None if args.skip_dedup else bench_dedup(url, store_root, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def spread(key: str) -> str:
        values = sorted(run[key] for run in runs)
        return f"{statistics.median(values):.0f} MB/s (runs {', '.join(f'{v:.0f}' for v in values)})"

    def ratio(key: str) -> str:
        return f"{statistics.median(run[key] / run['dd'] for run in runs):.2f}x dd"

    lines = [
        f"{args.repeat} runs of {args.ingest_mb} MB, median (all runs); ratios are medians of per-run ratios",
        f"disk write (dd if=/dev/zero bs=4M conv=fdatasync, same filesystem): {spread('dd')}",
        f"ingest of new random data ({runs[0]['chunks']:.0f} chunks), wall of the chunk posts at the server's HTTP "
        f"API, server pinned to 1 core (target >= 150): {spread('ingest_mb_s')} = {ratio('ingest_mb_s')}",
        f"restore stream at the server's HTTP API (server reads + verifies + sends every chunk; target >= 300): "
        f"{spread('restore_stream_mb_s')} = {ratio('restore_stream_mb_s')}",
        f"restore to disk with MirrorStoreClient.restore (+ client verifies, decompresses, writes files): "
        f"{spread('restore_mb_s')} = {ratio('restore_mb_s')}",
        f"restore into tmpfs (/dev/shm) with MirrorStoreClient.restore: {spread('restore_tmpfs_mb_s')}",
        "whole agent path upload_directory of new data (chunk+hash+compress+send+commit, client on 1 core): "
        f"{spread('upload_directory_mb_s')}",
    ]
    if dedup is not None:
        borg_lz4 = dedup["borg lz4 (borg default) mb"]
        lines += [
            f"dedup: {args.snapshots} snapshots of a mutating {args.state_mb} MB state ({args.dirty_pct}% pages "
            f"dirtied + 64 KiB inserted + 1 MiB appended per step), logical {dedup['logical_mb']:.0f} MB",
            f"  ours stored {dedup['ours_mb']:.1f} MB (sent {dedup['ours_sent_mb']:.1f} MB) in {dedup['ours_s']:.1f} s "
            "(client chunking + upload + commit)",
            f"  borg lz4 (default) stored {borg_lz4:.1f} MB in {dedup['borg lz4 (borg default) s']:.1f} s; "
            f"ours / borg = {dedup['ours_mb'] / borg_lz4:.3f}",
            f"  borg zstd,3 stored {dedup['borg zstd,3 mb']:.1f} MB in {dedup['borg zstd,3 s']:.1f} s; "
            f"ours / borg = {dedup['ours_mb'] / dedup['borg zstd,3 mb']:.3f}",
        ]
    print("\n".join(lines))
    if args.markdown:
        command = "PYTHONPATH=. .venv/bin/python bench/bench_store.py " + " ".join(sys.argv[1:])
        print("\n## Mirror Store (issue 6)\n\nCommand: `" + command + "`\n")
        print("\n".join(f"* {line}" for line in lines))


if __name__ == "__main__":
    main()
