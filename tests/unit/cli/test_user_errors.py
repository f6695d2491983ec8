"""Every user mistake the wiring can meet ends as one line on stderr and exit status 2.

These go through :func:`mirrortwin.cli.main` with the real catalogue, registry and trace lookup, but
never start a run: each mistake is caught before the twin would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mirrortwin.cli import main
from mirrortwin.config import Settings


@pytest.fixture
def no_trace_settings(tmp_path: Path) -> Settings:
    return Settings(
        traces_dir=tmp_path / "no-traces",
        cache_dir=tmp_path / "cache",
        trace_mirror_url=None,
        results_dir=tmp_path / "results",
        ci=False,
    )


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mirrortwin: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "no-such-scenario"], "no-such-scenario"),
        (["run", "smoke", "--policy", "no-such-policy"], "no-such-policy"),
        (["run", "smoke", "--set", "duration_s=-5"], "duration_s"),
        (["run", "smoke", "--set", "no_such_field=1"], "no_such_field"),
        (["run", "smoke", "--set", "controller.params.no_such_param=1"], "no_such_param"),
        (["compare", "smoke", "--policies", "null,no-such-policy"], "no-such-policy"),
        (["run", "missing.toml"], "missing.toml"),
    ],
)
def test_user_error_is_one_line_exit_2(
    argv: list[str], expected: str, no_trace_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, settings=no_trace_settings) == 2
    assert expected in _one_error_line(capsys)
    assert not no_trace_settings.results_dir.exists()


def test_missing_trace_says_what_to_download(no_trace_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "smoke"], settings=no_trace_settings) == 2
    line = _one_error_line(capsys)
    assert "mirrortwin traces download" in line
    assert str(no_trace_settings.traces_dir) in line
    assert not no_trace_settings.results_dir.exists()


def test_unknown_trace_set_download(no_trace_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["traces", "download", "no-such-trace-set"], settings=no_trace_settings) == 2
    assert "no-such-trace-set" in _one_error_line(capsys)
    assert not (no_trace_settings.cache_dir / "traces").exists()


def test_list_commands_print_names(no_trace_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "list"], settings=no_trace_settings) == 0
    scenarios_out = capsys.readouterr().out
    assert "smoke" in scenarios_out
    assert "planetlab-20110303" in scenarios_out
    assert main(["policies", "list"], settings=no_trace_settings) == 0
    policies_out = capsys.readouterr().out
    assert "threshold" in policies_out
    assert "null" in policies_out
    assert main(["traces", "list"], settings=no_trace_settings) == 0
    traces_out = capsys.readouterr().out
    assert str(no_trace_settings.traces_dir) in traces_out
