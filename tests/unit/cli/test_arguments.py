"""The command line's parsing and its one-line error contract, without running the twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirrortwin.cli import UsageError, build_parser, main, parse_overrides, parse_policy_list
from mirrortwin.config import Settings
from scenarios.spec import ScenarioError


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        traces_dir=tmp_path / "no-traces",
        cache_dir=tmp_path / "cache",
        trace_mirror_url=None,
        results_dir=tmp_path / "results",
        ci=False,
    )


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mirrortwin: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_run_arguments_parse() -> None:
    args = build_parser().parse_args(
        ["run", "smoke", "--policy", "null", "--set", "a.b=1", "--set", "c=x", "--out", "o", "--no-plots"]
    )
    assert (args.scenario, args.policy, args.set, args.out, args.no_plots) == (
        "smoke",
        "null",
        ["a.b=1", "c=x"],
        Path("o"),
        True,
    )


def test_run_defaults() -> None:
    args = build_parser().parse_args(["run", "smoke"])
    assert (args.policy, args.set, args.out, args.no_plots) == (None, [], None, False)


def test_compare_and_list_commands_parse() -> None:
    parser = build_parser()
    assert parser.parse_args(["compare", "smoke", "--policies", "null,threshold"]).policies == "null,threshold"
    for argv in (["scenarios", "list"], ["policies", "list"], ["traces", "list"]):
        assert callable(parser.parse_args(argv).func)
    download = parser.parse_args(["traces", "download", "planetlab", "--mirror", "http://127.0.0.1:1/"])
    assert (download.name, download.mirror) == ("planetlab", "http://127.0.0.1:1/")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["run"],
        ["run", "smoke", "--bogus"],
        ["compare", "smoke"],
        ["scenarios"],
        ["traces", "download"],
    ],
)
def test_usage_errors_are_one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "--help" in line


def test_overrides_are_parsed_as_toml_values_in_order() -> None:
    overrides = parse_overrides(["duration_s=3600", "controller.params.threshold=0.7", "name=x", "seed=1", "seed=2"])
    assert overrides == {"duration_s": 3600, "controller.params.threshold": 0.7, "name": "x", "seed": 2}
    assert list(overrides) == ["duration_s", "controller.params.threshold", "name", "seed"]


@pytest.mark.parametrize("item", ["no-equals-sign", "=3"])
def test_bad_override_is_a_scenario_error(item: str) -> None:
    with pytest.raises(ScenarioError):
        parse_overrides([item])


def test_bad_set_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "smoke", "--set", "duration_s"], settings=_settings(tmp_path)) == 2
    assert "--set" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "at least one"), (" , ", "at least one"), ("null,threshold,null", "more than once")],
)
def test_bad_policy_lists(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_policy_list(text)


def test_policy_list_is_split_and_stripped() -> None:
    assert parse_policy_list(" null, threshold ,") == ["null", "threshold"]


def test_empty_policy_list_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "smoke", "--policies", ","], settings=_settings(tmp_path)) == 2
    assert "--policies" in _one_error_line(capsys)
