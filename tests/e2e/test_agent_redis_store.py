"""``mirrortwin agent`` mirroring a real redis-server into a real ``mirrortwin store serve``, then restored.

Everything runs as a user would run it: three real processes (Redis, the store, the agent) on loopback
with free ports, the agent's CLI with the Redis BGSAVE hook, the controller-side client for control,
and the store client to restore. Skips until the store branch (``realworld.store``) is merged.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from mirrortwin.config import load_settings
from realworld.agent.control_client import AgentControlClient, AgentControlError

REPO_ROOT = Path(__file__).resolve().parents[2]
HOOK = REPO_ROOT / "realworld" / "agent" / "hooks" / "redis-bgsave.sh"
STORE_TOKEN, CONTROL_TOKEN = "ivn-b-store-token", "agent-control-token"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except (httpx.HTTPError, redis.exceptions.ConnectionError, OSError, AgentControlError):
            pass
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s} s"
        time.sleep(0.1)


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OPENBLAS_NUM_THREADS": "1"}

    def start(argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _redis(start: Callable[..., subprocess.Popen], binary: str, directory: Path, log: Path) -> redis.Redis:
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = start(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "", "--logfile", ""],
        log,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    _wait(lambda: bool(client.ping()), f"redis on {port}")
    client.proc = proc  # type: ignore[attr-defined]
    return client


def test_agent_cli_mirrors_redis_into_the_store_and_the_dump_restores(processes, tmp_path: Path) -> None:
    pytest.importorskip("realworld.store.client", reason="the Mirror Store lands with the store branch")
    from realworld.store.client import MirrorStoreClient
    from realworld.store.tenants import token_digest

    binary = shutil.which("redis-server")
    if binary is None:
        if load_settings().ci:
            pytest.fail("redis-server is missing; CI must have Debian's redis-server")
        pytest.skip("redis-server not installed")

    (tmp_path / "tenants.toml").write_text(f'[tenants.ivn-b]\ntoken_sha256 = "{token_digest(STORE_TOKEN)}"\n')
    (tmp_path / "store.token").write_text(STORE_TOKEN)
    (tmp_path / "control.token").write_text(CONTROL_TOKEN)
    store_port = _free_port()
    store_url = f"http://127.0.0.1:{store_port}"
    processes(
        [
            *(sys.executable, "-m", "mirrortwin", "store", "serve", "--root", str(tmp_path / "store")),
            *("--tenants", str(tmp_path / "tenants.toml"), "--port", str(store_port)),
        ],
        tmp_path / "store.log",
    )
    _wait(lambda: httpx.get(f"{store_url}/healthz", timeout=1).status_code == 200, "store health")

    source = _redis(processes, binary, tmp_path / "redis-src", tmp_path / "redis-src.log")
    for i in range(1000):
        source.set(f"k:{i}", f"v{i}")
    port = source.connection_pool.connection_kwargs["port"]
    agent_port = _free_port()
    agent = processes(
        [
            *(sys.executable, "-m", "mirrortwin", "agent", "--instance-id", "redis-a"),
            *("--pid", str(source.proc.pid), "--capture", "hook"),  # type: ignore[attr-defined]
            *("--hook-cmd", f"sh {HOOK} {port}", "--hook-output", str(tmp_path / "redis-src" / "dump.rdb")),
            *("--store-url", store_url, "--store-token-file", str(tmp_path / "store.token")),
            *("--control-token-file", str(tmp_path / "control.token"), "--listen", f"127.0.0.1:{agent_port}"),
            *("--interval-s", "3600", "--keep-last", "5", "--sample-interval-s", "0.2"),
        ],
        tmp_path / "agent.log",
    )
    with AgentControlClient(f"http://127.0.0.1:{agent_port}", CONTROL_TOKEN) as control:
        _wait(lambda: control.status()["counters"]["snapshots_ok"] >= 1, "first snapshot at start")
        source.set("k:late", "after the first snapshot")
        info = control.snapshot_now()
        assert info.instance_id == "redis-a" and info.file_count == 1
        assert len(control.samples()) >= 1
        metrics = httpx.get(f"http://127.0.0.1:{agent_port}/metrics").text
        assert 'mirrortwin_agent_snapshots_total{instance_id="redis-a",result="ok"} 2.0' in metrics
    source.set("k:unmirrored", "after the last snapshot")

    with MirrorStoreClient(store_url, token=STORE_TOKEN) as store:
        latest = store.latest("redis-a")
        assert latest is not None and latest.snapshot_id == info.snapshot_id
        assert any("redis-server" in p for p in latest.process_list)
        store.restore(latest.snapshot_id, tmp_path / "restored")
    restored = _redis(processes, binary, tmp_path / "restored", tmp_path / "redis-restored.log")
    assert restored.dbsize() == 1001
    assert restored.get("k:999") == b"v999"
    assert restored.get("k:late") == b"after the first snapshot"
    assert restored.get("k:unmirrored") is None

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(30) == 0, (tmp_path / "agent.log").read_text()
