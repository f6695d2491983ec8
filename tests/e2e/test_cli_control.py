"""``mirrortwin control``: the command runs the twin's own policy and controller classes on a live fleet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mirrortwin.cli import main
from mirrortwin.live_config import load_live_config
from policies.registry import make_policy
from tests.conftest import REPO_ROOT
from tests.e2e.live_harness import require_live_tools
from tests.servers.redis_server import free_port

EXAMPLE = REPO_ROOT / "scenarios" / "live" / "redis-two-ivns.toml"


def test_the_example_config_is_valid():
    config = load_live_config(EXAMPLE)
    assert config.controller.policy == "health-evacuate" and config.instances[0].ivn == "ivn-a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workdir = [", "not valid TOML"),
        ("", "ivns: Field required"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["control", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_bad_reference_names_the_field(tmp_path, capsys):
    text = EXAMPLE.read_text().replace('mirror_to = "ivn-b"', 'mirror_to = "ivn-z"', 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["control", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ivns.0.mirror_to: unknown IVN 'ivn-z'" in err


@pytest.mark.slow
def test_control_runs_the_same_policy_class_as_the_twin_and_writes_results(tmp_path: Path):
    require_live_tools()
    text = EXAMPLE.read_text()
    text = text.replace("read_port = 16379", f"read_port = {free_port()}").replace(
        "write_port = 16380", f"write_port = {free_port()}")
    config = tmp_path / "control.toml"
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "mirrortwin", "control", str(config), "--workdir", str(tmp_path / "w"),
         "--duration-s", "6"],
        capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "w" / "control" / "summary.json").read_text())
    twin_policy = make_policy("health-evacuate", {"ratio": 8.0})
    assert summary["policy_class"] == f"{type(twin_policy).__module__}.{type(twin_policy).__qualname__}"
    assert summary["ticks"] >= 2 and summary["migrations"] == []  # healthy fleet: nothing to move
    assert summary["placement"] == {"redis-1": "ivn-a/h0"}
    assert "control ticks" in done.stdout


def test_declared_events_in_a_live_config_become_the_cores_declarations(tmp_path, capsys):
    text = EXAMPLE.read_text() + (
        '\n[[events]]\nname = "black-friday"\nkind = "campaign"\nstart = 2026-11-27T00:00:00Z\n'
        'end = 2026-11-28T00:00:00Z\ndeclared_multiplier = 3.0\ninstances = ["redis-1"]\n'
    )
    path = tmp_path / "c.toml"
    path.write_text(text)
    event = load_live_config(path).events[0].declaration()
    assert (event.start_s, event.end_s, event.multiplier, event.instance_ids) == (
        1_795_737_600.0, 1_795_824_000.0, 3.0, ("redis-1",))
    path.write_text(text.replace('instances = ["redis-1"]', 'instances = ["nobody"]'))
    assert main(["control", str(path)]) == 2
    assert "events.0.instances.0: unknown instance 'nobody'" in capsys.readouterr().err
    path.write_text(text.replace("end = 2026-11-28T00:00:00Z", "end = 2026-11-26T00:00:00Z"))
    assert main(["control", str(path)]) == 2
    assert "end: must be after start" in capsys.readouterr().err
