"""``mirrortwin traces download`` end to end: the missing-trace message leads to a working run.

The mirror is a loopback HTTP server over the shared trace folder (the layout ``--mirror`` expects),
so the test touches no network beyond 127.0.0.1 and stops its server itself.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.traces]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of one access-log line per file."""


@pytest.fixture
def mirror(traces_root: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(traces_root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_download_then_run_without_the_shared_folder(
    mirrortwin: CliRunner, cli_env: dict[str, str], mirror: str, tmp_path: Path
) -> None:
    env = dict(
        cli_env,
        MIRRORTWIN_TRACES=str(tmp_path / "no-shared-folder"),
        MIRRORTWIN_CACHE=str(tmp_path / "cache"),
        MIRRORTWIN_RESULTS=str(tmp_path / "results"),
    )
    missing = mirrortwin("run", "smoke", "--no-plots", env=env)
    assert missing.returncode == 2
    assert "mirrortwin traces download planetlab-20110303" in missing.stderr

    fetched = mirrortwin("traces", "download", "planetlab-20110303", "--mirror", mirror, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert str(tmp_path / "cache" / "traces") in fetched.stdout

    ran = mirrortwin("run", "smoke", "--no-plots", env=env)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "results" / "smoke-threshold" / "report.md").is_file()


def test_unreachable_mirror_is_one_line_exit_1(mirrortwin: CliRunner, cli_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(cli_env, MIRRORTWIN_CACHE=str(tmp_path / "cache"))
    proc = mirrortwin("traces", "download", "planetlab-20110303", "--mirror", "http://127.0.0.1:9", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("mirrortwin: error: http://127.0.0.1:9/"), proc.stderr
    assert "Traceback" not in proc.stderr
