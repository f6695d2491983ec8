"""Shared fixtures: where the real traces are, and the CI rule that their absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from mirrortwin.config import load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def traces_root() -> Path:
    """The shared trace folder; skips the test when absent, except under CI where it fails."""
    settings = load_settings()
    root = settings.traces_dir
    if not (root / "planetlab").is_dir():
        if settings.ci:
            pytest.fail(f"trace folder {root} is missing; CI must have ../shared/traces")
        pytest.skip(f"trace folder {root} not present (set MIRRORTWIN_TRACES)")
    return root
