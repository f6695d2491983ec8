"""A real redis-server mirrored through the hook backend (BGSAVE) into the fake uploader, then restored."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from mirrortwin.config import load_settings
from realworld.agent.agent import MirroringAgent, SnapshotFailedError
from realworld.agent.capture import HookCapture
from realworld.agent.sampler import ProcessTreeSampler
from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader

HOOK = Path(__file__).resolve().parents[4] / "realworld" / "agent" / "hooks" / "redis-bgsave.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, proc: subprocess.Popen, port: int, directory: Path) -> None:
        self.proc, self.port, self.dir = proc, port, directory
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


@pytest.fixture
def start_redis() -> Iterator[Callable[[Path], RedisServer]]:
    binary = shutil.which("redis-server")
    if binary is None:
        if load_settings().ci:
            pytest.fail("redis-server is missing; CI must have Debian's redis-server")
        pytest.skip("redis-server not installed")
    servers: list[RedisServer] = []

    def start(directory: Path) -> RedisServer:
        directory.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
        argv += ["--appendonly", "no", "--dbfilename", "dump.rdb", "--daemonize", "no", "--logfile", ""]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(proc, port, directory)
        servers.append(server)
        deadline = time.monotonic() + 20
        while True:
            try:
                if server.client.ping():
                    return server
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}") from None
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.05)

    yield start
    for server in servers:
        server.client.close()
        server.proc.kill()
        server.proc.wait()


def test_bgsave_hook_mirrors_the_keys_written_before_the_snapshot(start_redis, tmp_path: Path) -> None:
    source = start_redis(tmp_path / "source")
    for i in range(500):
        source.client.set(f"before:{i}", f"value-{i}")
    source.client.hset("profile:1", mapping={"name": "ada", "plan": "pro"})
    uploader = FakeSnapshotUploader()
    agent = MirroringAgent(
        "redis-a",
        sampler=ProcessTreeSampler(source.proc.pid),
        capture=HookCapture(f"sh {HOOK} {source.port}", [source.dir / "dump.rdb"], timeout_s=30),
        uploader=uploader,
        work_dir=tmp_path,
        root_pid=source.proc.pid,
    )
    agent.sample_once()
    info = agent.snapshot_now()
    source.client.set("after:1", "not in the snapshot")

    (upload,) = uploader.uploads
    assert set(upload.files) == {"dump.rdb"}
    assert info.file_count == 1 and info.logical_bytes == len(upload.files["dump.rdb"])
    assert any("redis-server" in p for p in upload.process_list)
    assert upload.file_list is not None and upload.file_list[0] == "dump.rdb"
    assert agent.samples.latest() is not None and agent.samples.latest().memory_bytes > 0  # type: ignore[union-attr]

    restore_dir = tmp_path / "restore"
    restore_dir.mkdir()
    (restore_dir / "dump.rdb").write_bytes(upload.files["dump.rdb"])
    restored = start_redis(restore_dir)
    assert restored.client.dbsize() == 501
    assert restored.client.get("before:0") == b"value-0"
    assert restored.client.get("before:499") == b"value-499"
    assert restored.client.hgetall("profile:1") == {b"name": b"ada", b"plan": b"pro"}
    assert restored.client.get("after:1") is None


def test_second_snapshot_carries_the_newer_writes(start_redis, tmp_path: Path) -> None:
    source = start_redis(tmp_path / "source")
    uploader = FakeSnapshotUploader()
    agent = MirroringAgent(
        "redis-a",
        sampler=ProcessTreeSampler(source.proc.pid),
        capture=HookCapture(f"sh {HOOK} {source.port}", [source.dir / "dump.rdb"], timeout_s=30),
        uploader=uploader,
        work_dir=tmp_path,
    )
    source.client.set("k", "1")
    agent.snapshot_now()
    source.client.set("k", "2")
    agent.snapshot_now()
    restore_dir = tmp_path / "restore"
    restore_dir.mkdir()
    (restore_dir / "dump.rdb").write_bytes(uploader.uploads[-1].files["dump.rdb"])
    assert start_redis(restore_dir).client.get("k") == b"2"


def test_hook_against_a_dead_redis_fails_clearly(start_redis, tmp_path: Path) -> None:
    source = start_redis(tmp_path / "source")
    port = source.port
    source.proc.kill()
    source.proc.wait()
    uploader = FakeSnapshotUploader()
    agent = MirroringAgent(
        "redis-a",
        sampler=ProcessTreeSampler(1),
        capture=HookCapture(f"sh {HOOK} {port}", [source.dir / "dump.rdb"], timeout_s=30),
        uploader=uploader,
        work_dir=tmp_path,
    )
    with pytest.raises(SnapshotFailedError, match=r"hook: 'sh' exited with status 1: redis at 127\.0\.0\.1"):
        agent.snapshot_now()
    assert uploader.calls == 0
