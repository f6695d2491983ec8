"""``mirrortwin agent``: every argument mistake is one line and exit 2; a run serves until stopped."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirrortwin import agent_cli
from mirrortwin.cli import build_parser, main
from mirrortwin.config import Settings
from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, Path]:
    store, control = tmp_path / "store.token", tmp_path / "control.token"
    store.write_text("store-token\n")
    control.write_text("control-token\n")
    return store, control


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path, tmp_path / "cache", None, tmp_path / "results", False)


def _base(tokens: tuple[Path, Path], pid: int, *extra: str) -> list[str]:
    return [
        "agent",
        "--instance-id",
        "redis-a",
        "--pid",
        str(pid),
        "--store-url",
        "http://127.0.0.1:1",
        "--store-token-file",
        str(tokens[0]),
        "--control-token-file",
        str(tokens[1]),
        *extra,
    ]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mirrortwin: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--capture", "hook"], "--capture hook needs --hook-cmd"),
        (["--capture", "dir"], "--capture dir needs --state-dir"),
        (["--capture", "dir", "--state-dir", "/nonexistent/state"], "is not a directory"),
        (["--capture", "dir", "--state-dir", "/tmp", "--hook-cmd", "true"], "only apply to --capture hook"),
        (["--capture", "hook", "--hook-cmd", "true", "--state-dir", "/tmp"], "only applies to --capture dir"),
        (["--capture", "hook", "--hook-cmd", "'oops"], "cannot be split"),
        (["--capture", "zfs"], "invalid choice: 'zfs'"),
        (["--capture", "dir", "--state-dir", "/tmp", "--interval-s", "0"], "--interval-s: must be between"),
        (["--capture", "dir", "--state-dir", "/tmp", "--interval-s", "nan"], "--interval-s"),
        (["--capture", "dir", "--state-dir", "/tmp", "--interval-s", "ten"], "invalid float value: 'ten'"),
        (["--capture", "dir", "--state-dir", "/tmp", "--keep-last", "0"], "--keep-last: must be >= 1"),
        (["--capture", "dir", "--state-dir", "/tmp", "--sample-interval-s", "-1"], "--sample-interval-s"),
        (["--capture", "dir", "--state-dir", "/tmp", "--listen", "0.0.0.0:9100"], "wildcard addresses are refused"),
        (["--capture", "dir", "--state-dir", "/tmp", "--listen", "127.0.0.1"], "expected HOST:PORT"),
        (["--capture", "dir", "--state-dir", "/tmp", "--listen", "localhost:80"], "must be an IP address"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, tokens: tuple[Path, Path], sleeper: subprocess.Popen, capsys, extra: list[str], words: str
) -> None:
    assert main(_base(tokens, sleeper.pid, *extra), settings=_settings(tmp_path)) == 2
    assert words in _one_error_line(capsys)


def test_missing_process_and_token_file_and_bad_id(tmp_path: Path, tokens: tuple[Path, Path], capsys) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    args = _base(tokens, dead.pid, "--capture", "dir", "--state-dir", str(tmp_path))
    assert main(args, settings=_settings(tmp_path)) == 2
    assert f"--pid {dead.pid}: no such process" in _one_error_line(capsys)
    args[args.index(str(tokens[1]))] = str(tmp_path / "nope.token")
    assert main(args, settings=_settings(tmp_path)) == 2
    assert "--control-token-file" in _one_error_line(capsys)
    args = _base(tokens, 1, "--capture", "dir", "--state-dir", str(tmp_path))
    args[2] = "../../etc"
    assert main(args, settings=_settings(tmp_path)) == 2
    assert "--instance-id '../../etc'" in _one_error_line(capsys)


def test_pid_and_cgroup_are_exclusive(tmp_path: Path, tokens: tuple[Path, Path], capsys) -> None:
    args = _base(tokens, 1, "--capture", "dir", "--state-dir", str(tmp_path), "--cgroup", str(tmp_path))
    assert main(args, settings=_settings(tmp_path)) == 2
    assert "not allowed with argument" in _one_error_line(capsys)


def test_criu_here_is_unavailable_with_a_clear_reason(
    tmp_path: Path, tokens: tuple[Path, Path], sleeper: subprocess.Popen, capsys
) -> None:
    import shutil

    if shutil.which("criu") is not None:
        pytest.skip("criu is installed here")
    assert main(_base(tokens, sleeper.pid, "--capture", "criu"), settings=_settings(tmp_path)) == 1
    assert "criu: capture unavailable" in _one_error_line(capsys)


def test_help_answers_without_importing_the_agent() -> None:
    code = "import sys, mirrortwin.cli; print([m for m in sys.modules if m.startswith(('realworld', 'aiohttp'))])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_configured_agent_serves_snapshots_until_stopped(
    tmp_path: Path, tokens: tuple[Path, Path], sleeper: subprocess.Popen
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "data.bin").write_bytes(b"payload")
    args = build_parser().parse_args(
        _base(
            tokens,
            sleeper.pid,
            "--capture",
            "dir",
            "--state-dir",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--keep-last",
            "4",
            "--interval-s",
            "3600",
        )
    )
    config = agent_cli.parse_agent_args(args)
    uploader = FakeSnapshotUploader()
    stop = threading.Event()
    urls: list[str] = []
    worker = threading.Thread(
        target=agent_cli.run_agent, args=(config, lambda _c: uploader, stop), kwargs={"ready": urls.append}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not uploader.uploads and time.monotonic() < deadline:
            time.sleep(0.05)
        (upload,) = uploader.uploads  # the first snapshot is taken at start
        assert upload.files == {"data.bin": b"payload"} and upload.retention is not None
        assert upload.retention.keep_last == 4
        status = httpx.get(f"{urls[0]}/v1/status", headers={"Authorization": "Bearer control-token"}).json()
        assert status["instance_id"] == "redis-a" and status["counters"]["snapshots_ok"] == 1
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()


def test_pss_needs_a_process_tree(tmp_path: Path, tokens: tuple[Path, Path], capsys) -> None:
    args = _base(tokens, 1, "--capture", "dir", "--state-dir", str(tmp_path), "--memory", "pss")
    args[args.index("--pid") : args.index("--pid") + 2] = ["--cgroup", str(tmp_path)]
    assert main(args, settings=_settings(tmp_path)) == 2
    assert "--memory pss applies to --pid" in _one_error_line(capsys)
