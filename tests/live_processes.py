"""Real processes for the live-adapter tests (HAProxy, named HTTP backends), as helpers and fixtures.

A plain module rather than a conftest, so that both ``tests/integration/realworld`` and
``tests/contract`` import the same fixtures; binaries that are missing skip the test, or fail it under CI.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirrortwin.config import load_settings
from realworld.haproxy import HAPROXY_BIN, free_tcp_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def require_binary(path_or_name: str) -> str:
    """Return the binary's path; skip the test when it is missing, but fail under CI=true."""
    found = path_or_name if Path(path_or_name).exists() else shutil.which(path_or_name)
    if found is None:
        if load_settings().ci:
            pytest.fail(f"{path_or_name} is required under CI=true but is not installed")
        pytest.skip(f"{path_or_name} not installed")
    return found


def wait_for_port(address: str, port: int, timeout_s: float = 10.0) -> None:
    """Block until something accepts TCP connections on ``address:port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {address}:{port} after {timeout_s} s")


@dataclass
class NamedBackend:
    """A running named HTTP server process."""

    name: str
    address: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Kill it and reap it (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def haproxy_bin() -> str:
    """The HAProxy executable (skip/fail rules of :func:`require_binary`)."""
    return require_binary(HAPROXY_BIN)


@pytest.fixture
def named_backends() -> Iterator[list[NamedBackend]]:
    """Three named HTTP servers ``a``, ``b``, ``c`` on free 127.0.0.1 ports, killed afterwards."""
    backends: list[NamedBackend] = []
    try:
        for name in ("a", "b", "c"):
            port = free_tcp_port("127.0.0.1")
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.realworld.named_http_server", name, "127.0.0.1", str(port)],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            backends.append(NamedBackend(name, "127.0.0.1", port, process))
        for backend in backends:
            wait_for_port(backend.address, backend.port)
        yield backends
    finally:
        for backend in backends:
            backend.stop()
