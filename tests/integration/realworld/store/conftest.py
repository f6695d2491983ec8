"""A real ``mirrortwin store serve`` process per test module, with two tenants."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from realworld.store.tenants import token_digest

REPO_ROOT = Path(__file__).resolve().parents[4]
TOKEN_A = "token-of-ivn-a"
TOKEN_B = "token-of-ivn-b"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StoreProcess:
    """A running store: where it listens, where it keeps data, and its process."""

    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def store_command(root: Path, tenants: Path, port: int, *extra: str) -> list[str]:
    return [
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
        *extra,
    ]


def start_store(root: Path, tenants: Path, log_dir: Path, *extra: str) -> StoreProcess:
    port = free_port()
    log = log_dir / f"store-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(store_command(root, tenants, port, *extra), env=env, stdout=out, stderr=out)
    store = StoreProcess(f"http://127.0.0.1:{port}", root, proc, log, list(extra))
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{store.url}/healthz", timeout=1).raise_for_status()
            return store
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                store.kill()
                raise RuntimeError(f"store did not start: {log.read_text()}") from None
            time.sleep(0.05)


def write_tenants(path: Path) -> Path:
    path.write_text(
        f'[tenants.ivn-a]\ntoken_sha256 = "{token_digest(TOKEN_A)}"\n\n'
        f'[tenants.ivn-b]\ntoken_sha256 = "{token_digest(TOKEN_B)}"\n'
    )
    return path


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` with size, mtime and content digest: to prove a request changed nothing."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            state[path.relative_to(root).as_posix()] = (
                st.st_size,
                st.st_mtime_ns,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
    return state


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tenants_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tenants(tmp_path_factory.mktemp("tenants") / "tenants.toml")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tenants_file: Path) -> Iterator[StoreProcess]:
    work = tmp_path_factory.mktemp("store")
    process = start_store(work / "root", tenants_file, work, "--max-body-mb", "16")
    try:
        yield process
    finally:
        process.stop()
