"""Capture backends: turn an instance's current state into a directory of files for one snapshot.

Every backend writes into a staging directory the agent gives it and returns the files it holds
(paths relative to that directory). The directory is empty at each call, except for backends that
declare ``reuses_previous`` (``dir``): they get it back as their previous capture left it, and update
it in place. The agent adds the process list and the open files itself, so the
result is the specification's ``MirrorSnapshot {instance_id, timestamp, memory_image, process_list,
file_list}`` once uploaded.

* ``hook`` — the application dumps its own state (Redis ``BGSAVE``, ``pg_basebackup``, ...). Contract:
  the agent runs the command (a template split with shell rules and run *without* a shell; ``{out}``,
  ``{instance_id}`` and ``{pid}`` in any argument are replaced), waits at most ``timeout_s``, and the
  command must exit 0 only once every declared output path is complete and will not change until the
  hook runs again. The agent then copies those outputs (files or directories) into the snapshot. A
  non-zero exit, a timeout (the whole process group is killed) or a missing output is one
  :class:`CaptureError` and no snapshot.
* ``dir`` — a state directory copied file by file. Guarantee: each file in the snapshot is a byte-exact
  copy of one version of that file which did not change (inode, size, mtime, ctime) while it was read
  and had not been modified within :data:`RACY_WINDOW_NS` before the read began (so a write hidden by
  coarse timestamps cannot slip through); a file failing that is re-read up to ``attempts`` times, after
  which the capture fails (and the agent retries at its next attempt). Files written in place by a
  process that bypasses mtime updates (e.g. through a shared ``mmap`` never ``msync``ed) are out of
  reach of any copy-based check: use ``hook`` for those. There is *no* cross-file atomicity: use
  ``hook`` when files must agree with each other.
* ``criu`` — a CRIU image of the process tree (``criu dump --leave-running``), only where ``criu check``
  passes; otherwise :class:`CaptureUnavailableError` says why.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class CaptureError(RuntimeError):
    """A capture failed; ``str()`` says which backend, what and why, in one line."""


class CaptureUnavailableError(CaptureError):
    """The backend cannot work on this machine at all (e.g. CRIU missing or ``criu check`` failing)."""


class CaptureBackend(Protocol):
    """Writes one snapshot's state into a directory."""

    name: str
    #: True: ``out_dir`` is as this backend's previous capture left it, and the backend updates it in place.
    #: False: ``out_dir`` is empty at every call.
    reuses_previous: bool

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        """Write the state into ``out_dir``; return the files it holds, relative to it, sorted.

        Raises:
            CaptureError: Nothing usable was captured; ``out_dir`` may hold partial files the caller removes.
        """
        ...


def _tail(text: str | bytes | None, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _list_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class HookCapture:
    """Runs an application-provided dump command, then copies its declared outputs into the snapshot."""

    name = "hook"
    reuses_previous = False

    def __init__(self, command: str, outputs: Sequence[Path], *, timeout_s: float = 60.0) -> None:
        """Remember the hook contract; nothing runs until :meth:`capture`.

        Args:
        command: Command template, split with shell rules but run without a shell.
        outputs: Files or directories the command leaves complete when it exits 0 (may be empty when
            the command writes straight into ``{out}``).
        timeout_s: How long the command may run before its process group is killed.
        """
        try:
            self._argv = shlex.split(command)
        except ValueError as exc:
            raise CaptureError(f"hook: --hook-cmd {command!r} cannot be split into arguments: {exc}") from None
        if not self._argv:
            raise CaptureError("hook: --hook-cmd is empty")
        if not outputs and not any("{out}" in arg for arg in self._argv):
            raise CaptureError(
                "hook: give --hook-output PATH or write into {out} from --hook-cmd, else nothing is captured"
            )
        if not timeout_s > 0:
            raise CaptureError(f"hook: timeout must be > 0 s, got {timeout_s}")
        self._outputs = [Path(p) for p in outputs]
        self._timeout_s = timeout_s

    def _argv_for(self, out_dir: Path, instance_id: str, pid: int | None) -> list[str]:
        values = {"{out}": str(out_dir), "{instance_id}": instance_id, "{pid}": "" if pid is None else str(pid)}
        argv = []
        for arg in self._argv:
            for key, value in values.items():
                arg = arg.replace(key, value)
            argv.append(arg)
        return argv

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        """Run the hook, then copy its outputs into ``out_dir``."""
        argv = self._argv_for(out_dir, instance_id, pid)
        # Output goes to files, not pipes: a hook that leaves a background child holding its stdout
        # open must not make us wait for that child.
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(
                    argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
                )
            except OSError as exc:
                raise CaptureError(f"hook: cannot run {argv[0]!r}: {exc.strerror or exc}") from None
            try:
                returncode = proc.wait(timeout=self._timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise CaptureError(
                    f"hook: {argv[0]!r} did not finish within {self._timeout_s:g} s; killed, no snapshot"
                ) from None
            if returncode != 0:
                stderr.seek(0)
                stdout.seek(0)
                why = _tail(stderr.read()[-4096:]) or _tail(stdout.read()[-4096:]) or "no output"
                raise CaptureError(f"hook: {argv[0]!r} exited with status {returncode}: {why}")
        for output in self._outputs:
            if output.is_dir():
                shutil.copytree(output, out_dir / output.name, dirs_exist_ok=True)
            elif output.is_file():
                shutil.copy2(output, out_dir / output.name)
            else:
                raise CaptureError(f"hook: {argv[0]!r} exited 0 but its output {output} does not exist")
        return _list_files(out_dir)


#: File timestamps come from the kernel's coarse clock (one tick, 1-10 ms, behind the fine one), so a
#: write during a read can leave mtime unchanged if it lands in the tick the read ended in. As git does
#: for "racily clean" index entries, a file modified less than this long before its read started is
#: treated as possibly changing: wait this long and read it again.
RACY_WINDOW_NS = 50_000_000


def _fingerprint(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class DirCapture:
    """Mirrors a state directory into the staging directory, re-reading any file that changed while read.

    Incremental: the agent keeps the staging directory between snapshots (``reuses_previous``), and a
    file whose source is unchanged since its last stable copy (same inode, size, mtime and ctime, and
    not modified within the racy window) is left as it is, so its staged copy keeps its inode and mtime.
    Only changed files are copied again and files gone from the source are removed. Besides saving the
    copy, this lets the store client's files cache skip re-reading and re-chunking unchanged files.
    """

    name = "dir"
    reuses_previous = True

    def __init__(self, state_dir: Path, *, attempts: int = 3) -> None:
        """Remember the directory; it must exist now.

        Args:
        state_dir: The directory whose files are the instance's state.
        attempts: Reads of one file before a file that keeps changing fails the capture.
        """
        if not state_dir.is_dir():
            raise CaptureError(f"dir: --state-dir {state_dir} is not a directory")
        self._state_dir = state_dir
        self._attempts = max(1, attempts)
        # relative path -> (source fingerprint at its last stable copy, staged copy's fingerprint)
        self._copied: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {}

    def _copy_stable(self, source: Path, target: Path) -> tuple[int, int, int, int] | None:
        """Copy ``source``; return its fingerprint, or None when it vanished (deleted: not part of the state)."""
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(RACY_WINDOW_NS / 1e9)
            try:
                started_ns = time.time_ns()
                before = _fingerprint(source)
                shutil.copyfile(source, target)
                after = _fingerprint(source)
            except FileNotFoundError:
                return None
            if before == after and max(after[2], after[3]) < started_ns - RACY_WINDOW_NS:
                return after
        raise CaptureError(
            f"dir: {source} changed during each of {self._attempts} reads; snapshot not taken (retried later)"
        )

    def _unchanged(self, relative: str, source: Path, target: Path) -> bool:
        """Whether the staged copy of ``relative`` is still an exact copy of the source (no read needed)."""
        previous = self._copied.get(relative)
        if previous is None:
            return False
        try:
            now = _fingerprint(source)
            staged = _fingerprint(target)
        except FileNotFoundError:
            return False
        racy = max(now[2], now[3]) >= time.time_ns() - RACY_WINDOW_NS
        return not racy and now == previous[0] and staged == previous[1]

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        """Bring ``out_dir`` in line with the state directory (regular files only; symlinks are skipped)."""
        if not self._state_dir.is_dir():
            raise CaptureError(f"dir: state directory {self._state_dir} is gone")
        present: set[str] = set()
        for dirpath, _dirnames, filenames in os.walk(self._state_dir):
            source_dir = Path(dirpath)
            target_dir = out_dir / source_dir.relative_to(self._state_dir)
            if target_dir.exists() and not target_dir.is_dir():
                target_dir.unlink()
            target_dir.mkdir(parents=True, exist_ok=True)
            for filename in filenames:
                source, target = source_dir / filename, target_dir / filename
                if source.is_symlink() or not source.is_file():
                    continue
                relative = str(target.relative_to(out_dir))
                if self._unchanged(relative, source, target):
                    present.add(relative)
                    continue
                self._copied.pop(relative, None)
                if target.is_dir():
                    shutil.rmtree(target)
                fingerprint = self._copy_stable(source, target)
                if fingerprint is None:
                    target.unlink(missing_ok=True)
                    continue
                self._copied[relative] = (fingerprint, _fingerprint(target))
                present.add(relative)
        for relative in set(_list_files(out_dir)) - present:  # gone from the source since the last capture
            (out_dir / relative).unlink()
            self._copied.pop(relative, None)
        for dirpath, dirnames, filenames in sorted(os.walk(out_dir), reverse=True):
            if not dirnames and not filenames and Path(dirpath) != out_dir:
                Path(dirpath).rmdir()
        return _list_files(out_dir)


class CriuCapture:
    """Dumps the process tree with CRIU, leaving it running; refuses clearly where CRIU cannot work.

    Not exercised by the test suite on machines without a working CRIU (ours); the availability check is.
    """

    name = "criu"
    reuses_previous = False

    def __init__(self, *, criu_binary: str = "criu", timeout_s: float = 120.0) -> None:
        """Check that ``criu check`` passes now.

        Raises:
            CaptureUnavailableError: CRIU is not installed, or ``criu check`` fails (with its reason).
        """
        found = shutil.which(criu_binary)
        if found is None:
            raise CaptureUnavailableError(
                f"criu: capture unavailable: the {criu_binary!r} binary is not installed (not found on PATH); "
                "use --capture hook or --capture dir"
            )
        try:
            check = subprocess.run([found, "check"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CaptureUnavailableError(f"criu: capture unavailable: 'criu check' could not run: {exc}") from None
        if check.returncode != 0:
            why = _tail(check.stderr) or _tail(check.stdout) or f"status {check.returncode}"
            raise CaptureUnavailableError(f"criu: capture unavailable: 'criu check' failed on this machine: {why}")
        self._binary = found
        self._timeout_s = timeout_s

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        """``criu dump --leave-running`` of the tree rooted at ``pid`` into ``out_dir``."""
        if pid is None:
            raise CaptureError("criu: needs the instance's root pid (--pid), not a cgroup")
        argv = [self._binary, "dump", "-t", str(pid), "-D", str(out_dir), "--leave-running", "--shell-job"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            raise CaptureError(f"criu: dump of pid {pid} did not finish within {self._timeout_s:g} s") from None
        if done.returncode != 0:
            raise CaptureError(f"criu: dump of pid {pid} failed: {_tail(done.stderr) or done.returncode}")
        return _list_files(out_dir)
