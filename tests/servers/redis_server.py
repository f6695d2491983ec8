"""Real ``redis-server`` processes for tests, on 127.0.0.1 and free ports, always stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from realworld.redis_app import RedisEndpoint


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_redis_server() -> str:
    """Path of ``redis-server``; skips the test when absent, fails under CI (``CI=true``)."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing; .ci/system-packages installs it")
        pytest.skip("redis-server not installed")
    return path


@contextmanager
def redis_server(data_dir: Path, *, port: int | None = None, extra: tuple[str, ...] = ()) -> Iterator[RedisEndpoint]:
    """Start ``redis-server`` with its state in ``data_dir``; yields its endpoint; stops it afterwards."""
    binary = require_redis_server()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = RedisEndpoint("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if endpoint.client(0.2).ping():
                    break
            except redis.RedisError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start: {(data_dir / 'redis.log').read_text()}")
            time.sleep(0.02)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
