"""``mirrortwin failure-model`` end to end on a small synthetic SMART folder, and its one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mirrortwin.cli import main
from mirrortwin.config import Settings
from scenarios.traces.backblaze import LAST_DAY_MODELS, TEN_DAY_MODELS, smart_file

HEADER = (
    "date,serial_number,model,capacity_bytes,failure,smart_5_raw,smart_9_raw,smart_194_raw,smart_197_raw,smart_199_raw"
)


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        traces_dir=tmp_path / "traces",
        cache_dir=tmp_path / "cache",
        trace_mirror_url=None,
        results_dir=tmp_path / "results",
        ci=False,
    )


def _fake_folder(traces: Path) -> None:
    rng = np.random.default_rng(0)
    folder = traces / "backblaze_smart_2019"
    folder.mkdir(parents=True)
    for model in LAST_DAY_MODELS:
        rows = []
        for i in range(150):
            failed = i % 10 == 0
            sectors = int(rng.integers(5, 300)) if failed and rng.random() < 0.8 else 0
            rows.append(f"2019-12-31,{model[:3]}{i},{model},1,{int(failed)},{sectors},{rng.integers(100, 9000)},30,0,0")
        for path, lines in ((smart_file(folder, model), rows),) + (
            ((smart_file(folder, model, "last_10_day"), rows * 2),) if model in TEN_DAY_MODELS else ()
        ):
            path.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode()))


def test_train_prints_and_writes_the_metrics_then_scores_the_saved_model(tmp_path, capsys):
    settings = _settings(tmp_path)
    _fake_folder(settings.traces_dir)
    assert main(["failure-model", "--train"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "| held-out drives, all models |" in out and "no-skill PR-AUC" in out
    assert "600 drives, 60 failed (base rate 10.00%)" in out
    folder = settings.results_dir / "failure-model"
    assert (folder / "failure-model.joblib").is_file()
    assert "| held-out drives, all models |" in (folder / "metrics.md").read_text()
    first_row = next(line for line in out.splitlines() if line.startswith("| held-out drives, all models"))

    assert main(["failure-model"], settings=settings) == 0
    again = capsys.readouterr().out
    assert first_row in again  # the saved model on the same held-out drives
    assert "unseen model" not in again


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mirrortwin: error: ") and "Traceback" not in captured.err
    return lines[0]


def test_errors_are_one_line(tmp_path, capsys):
    settings = _settings(tmp_path)
    assert main(["failure-model"], settings=settings) == 2  # no model saved: it would train, but no data
    assert "backblaze_smart_2019 not found" in _one_error_line(capsys)
    assert main(["failure-model", "--train"], settings=settings) == 2
    assert "backblaze_smart_2019 not found" in _one_error_line(capsys)

    _fake_folder(settings.traces_dir)
    artefact = settings.results_dir / "failure-model" / "failure-model.joblib"
    artefact.parent.mkdir(parents=True)
    artefact.write_bytes(b"junk")
    assert main(["failure-model"], settings=settings) == 2
    assert "not a readable failure-model artefact" in _one_error_line(capsys)

    bad = settings.traces_dir / "backblaze_smart_2019" / f"{LAST_DAY_MODELS[0]}_last_day_all_q_raw.csv.gz"
    bad.write_bytes(gzip.compress(b"date,serial_number,model,failure\n2019-12-31,S,M,0\n"))
    assert main(["failure-model", "--train"], settings=settings) == 2
    line = _one_error_line(capsys)
    assert str(bad) in line and "missing column(s) capacity_bytes" not in line and "smart_5_raw" in line
