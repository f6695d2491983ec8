"""The composition root loads what it needs when it needs it; the twin never loads plotting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _loaded_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    code = f"import sys\n{statement}\nprint(','.join(m for m in {modules!r} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return [m for m in proc.stdout.strip().split(",") if m]


@pytest.mark.parametrize("statement", ["import sim.runner", "import mirrortwin.wiring"])
def test_running_the_twin_does_not_import_plotting(statement: str) -> None:
    assert _loaded_after(statement, ("matplotlib", "mirrortwin.plots", "mirrortwin.report")) == []


def test_cli_module_imports_no_twin_or_plotting() -> None:
    # So `mirrortwin --help` and usage errors answer without loading the twin or matplotlib.
    assert _loaded_after("import mirrortwin.cli", ("sim.runner", "matplotlib", "policies.registry", "torch")) == []
