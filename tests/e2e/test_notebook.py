"""The quick-start notebook runs top to bottom on the real twin without an error."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "01-quickstart.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.traces]


def test_quickstart_notebook_executes(traces_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment. The kernel name "python3" is resolved by jupyter_client
    # to the interpreter running the tests (its kernelspec's argv starts with plain "python"), so the
    # notebook sees the venv's packages; PYTHONPATH makes it import this checkout, installed or not.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MIRRORTWIN_TRACES", str(traces_root))
    monkeypatch.setenv("MIRRORTWIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MIRRORTWIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    images = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if "image/png" in o.get("data", {})
    ]
    assert len(images) == 3
    assert (tmp_path / "results" / "quickstart-smoke" / "report.md").is_file()
