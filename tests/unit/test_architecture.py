"""The core stays pure: importing ``policies`` (every module of it) loads neither simpy nor the worlds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import policies
    modules = [m.name for m in pkgutil.walk_packages(policies.__path__, "policies.")]
    for name in modules:
        importlib.import_module(name)
    forbidden = sorted(
        m for m in sys.modules
        if m.split(".")[0] in {"simpy", "sim", "realworld", "scenarios", "mirrortwin"}
    )
    print(json.dumps({"modules": modules, "forbidden": forbidden}))
    """
)


def test_policies_import_neither_simpy_nor_the_worlds() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(completed.stdout)
    assert "policies.workflow" in report["modules"]
    assert "policies.controller" in report["modules"]
    assert report["forbidden"] == []
