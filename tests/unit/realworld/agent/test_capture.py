"""Capture backends on real scripts and directories."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realworld.agent.capture import (
    CaptureError,
    CaptureUnavailableError,
    CriuCapture,
    DirCapture,
    HookCapture,
)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hook.py"
    path.write_text(body)
    return path


def test_hook_output_file_is_copied_into_the_snapshot(tmp_path: Path) -> None:
    dump = tmp_path / "dump.bin"
    hook = _script(tmp_path, f"from pathlib import Path\nPath({str(dump)!r}).write_bytes(b'state-42')\n")
    out = tmp_path / "out"
    out.mkdir()
    files = HookCapture(f"{sys.executable} {hook}", [dump]).capture(out, instance_id="i1", pid=None)
    assert files == ["dump.bin"]
    assert (out / "dump.bin").read_bytes() == b"state-42"


def test_hook_can_write_into_out_with_placeholders(tmp_path: Path) -> None:
    hook = _script(
        tmp_path,
        "import sys\nfrom pathlib import Path\n"
        "Path(sys.argv[1], 'state.txt').write_text(sys.argv[2] + ' ' + sys.argv[3])\n",
    )
    out = tmp_path / "out"
    out.mkdir()
    files = HookCapture(f"{sys.executable} {hook} {{out}} {{instance_id}} {{pid}}", []).capture(
        out, instance_id="redis-a", pid=1234
    )
    assert files == ["state.txt"]
    assert (out / "state.txt").read_text() == "redis-a 1234"


def test_failing_hook_is_one_clear_error(tmp_path: Path) -> None:
    hook = _script(tmp_path, "import sys\nsys.stderr.write('BGSAVE refused: disk full\\n')\nsys.exit(3)\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CaptureError, match=r"exited with status 3: BGSAVE refused: disk full"):
        HookCapture(f"{sys.executable} {hook}", [tmp_path / "x"]).capture(out, instance_id="i", pid=None)


def test_hanging_hook_times_out_and_its_children_are_killed(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    hook = _script(
        tmp_path,
        "import subprocess, time\nfrom pathlib import Path\n"
        f"c = subprocess.Popen(['sleep', '30'])\nPath({str(marker)!r}).write_text(str(c.pid))\ntime.sleep(30)\n",
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CaptureError, match=r"did not finish within 1 s; killed, no snapshot"):
        HookCapture(f"{sys.executable} {hook}", [tmp_path / "x"], timeout_s=1).capture(out, instance_id="i", pid=None)
    import psutil

    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the hook's child survived the timeout"
        time.sleep(0.05)


def test_hook_that_leaves_no_output_fails(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CaptureError, match=r"exited 0 but its output .*missing.bin does not exist"):
        HookCapture("true", [tmp_path / "missing.bin"]).capture(out, instance_id="i", pid=None)


def test_hook_command_that_does_not_exist_fails_clearly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CaptureError, match=r"cannot run 'no-such-hook-binary'"):
        HookCapture("no-such-hook-binary", [tmp_path / "x"]).capture(out, instance_id="i", pid=None)


@pytest.mark.parametrize(
    ("command", "outputs", "message"),
    [("", ["x"], "empty"), ("'unbalanced", ["x"], "cannot be split"), ("true", [], "nothing is captured")],
)
def test_hook_contract_is_checked_up_front(command: str, outputs: list[str], message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        HookCapture(command, [Path(p) for p in outputs])


def test_dir_capture_copies_the_tree(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    (state / "a.db").write_bytes(b"a" * 1000)
    (state / "sub" / "b.log").write_bytes(b"b")
    (state / "link").symlink_to(state / "a.db")
    out = tmp_path / "out"
    out.mkdir()
    files = DirCapture(state).capture(out, instance_id="i", pid=None)
    assert files == ["a.db", "sub/b.log"]
    assert (out / "a.db").read_bytes() == b"a" * 1000


def test_dir_capture_fails_on_a_file_that_never_stops_changing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    hot = state / "hot.bin"
    hot.write_bytes(b"x" * (1 << 20))
    scribbler = (
        "import sys, time\nn = 0\nt = time.time()\n"
        "while time.time() - t < 20:\n"
        "    with open(sys.argv[1], 'r+b') as f: f.write(n.to_bytes(8, 'little'))\n"
        "    n += 1; time.sleep(0.005)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", scribbler, str(hot)])
    out = tmp_path / "out"
    out.mkdir()
    try:
        time.sleep(0.3)
        with pytest.raises(CaptureError, match=r"hot.bin changed during each of 3 reads"):
            DirCapture(state, attempts=3).capture(out, instance_id="i", pid=None)
    finally:
        writer.kill()
        writer.wait()


def test_dir_capture_rereads_a_file_that_settles(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "fresh.bin").write_bytes(b"just written")  # modified within the racy window: read twice
    out = tmp_path / "out"
    out.mkdir()
    assert DirCapture(state).capture(out, instance_id="i", pid=None) == ["fresh.bin"]
    assert (out / "fresh.bin").read_bytes() == b"just written"


def test_dir_capture_of_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="is not a directory"):
        DirCapture(tmp_path / "nope")


def test_criu_unavailable_says_why(tmp_path: Path) -> None:
    if shutil.which("criu") is None:
        with pytest.raises(CaptureUnavailableError, match=r"criu: capture unavailable: .*not installed"):
            CriuCapture()
    else:  # installed: on this kind of machine 'criu check' fails, and the error carries its reason
        try:
            CriuCapture()
        except CaptureUnavailableError as exc:
            assert "criu check" in str(exc)
        else:
            pytest.skip("criu check passes here; the unavailable path cannot be shown")


def test_criu_with_a_fake_binary_that_fails_check(tmp_path: Path) -> None:
    fake = tmp_path / "criu"
    fake.write_text("#!/bin/sh\necho 'Error (criu/cr-check.c:1): Kernel lacks CONFIG_CHECKPOINT_RESTORE' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(CaptureUnavailableError, match=r"'criu check' failed on this machine: .*CHECKPOINT_RESTORE"):
        CriuCapture(criu_binary=str(fake))


def test_hook_leaving_a_background_child_is_not_waited_for(tmp_path: Path) -> None:
    dump = tmp_path / "dump.bin"
    # The hook exits 0 at once but leaves a child holding its stdout and stderr for 30 s.
    hook = _script(
        tmp_path,
        "import subprocess\nfrom pathlib import Path\n"
        "c = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        f"Path({str(tmp_path / 'child.pid')!r}).write_text(str(c.pid))\n"
        f"Path({str(dump)!r}).write_bytes(b'ok')\n",
    )
    out = tmp_path / "out"
    out.mkdir()
    try:
        files = HookCapture(f"{sys.executable} {hook}", [dump], timeout_s=10).capture(out, instance_id="i", pid=None)
        assert files == ["dump.bin"]
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int((tmp_path / "child.pid").read_text()), signal.SIGKILL)


def test_dir_capture_is_incremental_in_a_reused_staging_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    for name in ("keep.bin", "change.bin", "sub/drop.bin"):
        (state / name).write_bytes(name.encode() * 1000)
    for name in ("keep.bin", "change.bin", "sub/drop.bin"):  # age them past the racy window
        os.utime(state / name, ns=(time.time_ns() - 10**9, time.time_ns() - 10**9))
    out = tmp_path / "out"
    out.mkdir()
    capture = DirCapture(state)
    assert capture.capture(out, instance_id="i", pid=None) == ["change.bin", "keep.bin", "sub/drop.bin"]
    kept_before = (out / "keep.bin").stat()
    (state / "change.bin").write_bytes(b"new content")
    (state / "sub" / "drop.bin").unlink()
    (state / "added.bin").write_bytes(b"added")
    files = capture.capture(out, instance_id="i", pid=None)
    assert files == ["added.bin", "change.bin", "keep.bin"]
    assert (out / "change.bin").read_bytes() == b"new content"
    assert (out / "added.bin").read_bytes() == b"added"
    assert not (out / "sub").exists()
    kept_after = (out / "keep.bin").stat()
    assert (kept_after.st_ino, kept_after.st_mtime_ns) == (kept_before.st_ino, kept_before.st_mtime_ns)


def test_dir_capture_recopies_a_staged_file_someone_altered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "a.bin").write_bytes(b"original")
    os.utime(state / "a.bin", ns=(time.time_ns() - 10**9, time.time_ns() - 10**9))
    out = tmp_path / "out"
    out.mkdir()
    capture = DirCapture(state)
    capture.capture(out, instance_id="i", pid=None)
    (out / "a.bin").write_bytes(b"tampered")
    capture.capture(out, instance_id="i", pid=None)
    assert (out / "a.bin").read_bytes() == b"original"
