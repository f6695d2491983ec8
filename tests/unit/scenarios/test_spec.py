"""Scenario spec files: validation, one-line errors naming file/field/line, and ``--set`` overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.catalogue import CATALOGUE_DIR
from scenarios.spec import IvnSpec, ScenarioError, load_scenario_file, parse_override

SMOKE = (CATALOGUE_DIR / "smoke.toml").read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def _error(path: Path, overrides: dict[str, object] | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    assert message.startswith(str(path))
    return message


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    text = SMOKE.replace('policy = "threshold"\n', 'policy = "threshold"\nintervall_s = 60.0\n')
    path = _write(tmp_path, text)
    message = _error(path)
    assert f"{path}:{_line_of(text, 'intervall_s')}: controller.intervall_s: unknown field" in message


def test_wrong_type_names_field_and_value(tmp_path: Path) -> None:
    text = SMOKE.replace("duration_s = 21_600.0", 'duration_s = "six hours"')
    path = _write(tmp_path, text)
    message = _error(path)
    assert f"{path}:{_line_of(text, 'six hours')}: duration_s:" in message
    assert "'six hours'" in message


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, SMOKE.replace("duration_s = 21_600.0\n", ""))
    message = _error(path)
    assert "duration_s: required field is missing" in message


def test_missing_nested_field_points_at_its_table(tmp_path: Path) -> None:
    text = SMOKE.replace("pes = 2\npe_mips = 2660.0", "pe_mips = 2660.0")
    path = _write(tmp_path, text)
    message = _error(path)
    assert "topology.host_types[1].pes: required field is missing" in message


def test_unknown_host_type_names_the_exact_field_and_line(tmp_path: Path) -> None:
    text = SMOKE.replace('{ type = "G5", count = 4 }', '{ type = "G6", count = 4 }')
    path = _write(tmp_path, text)
    message = _error(path)
    assert f"{path}:{_line_of(text, 'G6')}: topology.ivns[1].hosts[1].type: unknown host type 'G6'" in message


def test_unknown_ivn_in_workload_is_named(tmp_path: Path) -> None:
    text = SMOKE.replace('ivns = ["ivn-a"]', 'ivns = ["ivn-z"]')
    path = _write(tmp_path, text)
    message = _error(path)
    assert f"{path}:{_line_of(text, 'ivn-z')}: workload.ivns: unknown IVN 'ivn-z'" in message


def test_from_trace_with_instance_types_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, SMOKE.replace('"round_robin"', '"from_trace"'))
    message = _error(path)
    assert "workload.instance_types: must be empty when type_assignment = 'from_trace'" in message


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, SMOKE.replace("seed = 0", "seed = = 0")))
    assert "not valid TOML" in message


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    message = _error(tmp_path / "nowhere.toml")
    assert "cannot read scenario file" in message


def test_overrides_are_applied_and_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, SMOKE)
    key, value = parse_override("controller.params.threshold=0.7")
    scenario = load_scenario_file(path, {key: value, "workload.subset": parse_override("x=20110306")[1]})
    assert scenario.controller.params["threshold"] == 0.7
    assert scenario.workload.subset == "20110306"  # a TOML integer on the command line is a day name
    message = _error(path, dict([parse_override("rma.snapshot_interval_s=-5")]))
    assert "rma.snapshot_interval_s" in message


def test_override_into_a_scalar_is_one_line(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, SMOKE), {"seed.x": 1})
    assert "cannot apply" in message


def test_parse_override_reads_toml_values_and_falls_back_to_text() -> None:
    assert parse_override("a.b=1") == ("a.b", 1)
    assert parse_override("a.b = [1, 2]") == ("a.b", [1, 2])
    assert parse_override("policy=threshold") == ("policy", "threshold")
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        parse_override("no-equals")


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("interleaved", ["G4", "G5", "G4", "G5", "G4"]),
        ("grouped", ["G4", "G4", "G4", "G5", "G5"]),
    ],
)
def test_host_order(order: str, expected: list[str]) -> None:
    ivn = IvnSpec.model_validate(
        {"name": "dc", "host_order": order, "hosts": [{"type": "G4", "count": 3}, {"type": "G5", "count": 2}]}
    )
    assert ivn.host_type_sequence() == expected


def test_ivn_restrictions_are_checked_and_give_the_allowed_mask(tmp_path: Path) -> None:
    path = _write(tmp_path, SMOKE)
    spec = load_scenario_file(path, {"workload.may_move_to": ["ivn-a"]})
    assert spec.allowed_ivns() == [True, False]
    assert load_scenario_file(path).allowed_ivns() == [True, True]
    assert "unknown IVN 'ivn-x'" in _error(path, {"workload.may_move_to": ["ivn-x"]})
    assert "no IVN is left" in _error(path, {"workload.min_security_level": 9})
    # instances may not start where they may not run
    message = _error(path, {"workload.may_move_to": ["ivn-b"]})
    assert "workload.ivns" in message and "'ivn-a'" in message
