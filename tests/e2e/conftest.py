"""Fixtures for end-to-end tests: the ``mirrortwin`` command run as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cli_env(traces_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of the subprocess: the real traces, a private cache and results folder.

    ``PYTHONPATH`` points at the checkout so the tests run the code under test whether or not the
    package is installed in the interpreter.
    """
    base = tmp_path_factory.mktemp("cli")
    env = dict(os.environ)
    env.update(
        MIRRORTWIN_TRACES=str(traces_root),
        MIRRORTWIN_CACHE=str(base / "cache"),
        MIRRORTWIN_RESULTS=str(base / "results"),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OPENBLAS_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    return env


@pytest.fixture(scope="session")
def mirrortwin(cli_env: dict[str, str]) -> CliRunner:
    """Run ``python -m mirrortwin ARGS...`` and return the completed process (never raises on rc)."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mirrortwin", *args],
            env=env or cli_env,
            cwd=cwd or REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run
