"""``mirrortwin store serve`` startup errors: one clear line, exit status 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, free_port, write_tenants


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mirrortwin", "store", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not toml [[[", "not valid TOML"),
        ("[other]\n", "at least one [tenants.NAME]"),
        ('[tenants.a]\ntoken = "clear-text"\n', "token_sha256"),
        ('[tenants."../x"]\ntoken_sha256 = "' + "a" * 64 + '"\n', "tenant name"),
    ],
)
def test_bad_tenants_file(tmp_path: Path, content: str, needle: str) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(content)
    _assert_one_line_error(_serve("--root", str(tmp_path / "root"), "--tenants", str(tenants)), str(tenants), needle)


def test_missing_tenants_file(tmp_path: Path) -> None:
    result = _serve("--root", str(tmp_path / "root"), "--tenants", str(tmp_path / "absent.toml"))
    _assert_one_line_error(result, "absent.toml", "not found")


def test_port_in_use(tmp_path: Path) -> None:
    tenants = write_tenants(tmp_path / "tenants.toml")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _serve("--root", str(tmp_path / "root"), "--tenants", str(tenants), "--port", str(port))
    _assert_one_line_error(result, str(port), "in use")


def test_root_not_writable(tmp_path: Path) -> None:
    tenants = write_tenants(tmp_path / "tenants.toml")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _serve("--root", str(blocker / "root"), "--tenants", str(tenants), "--port", str(free_port()))
    _assert_one_line_error(result, "--root", "a-file")
