"""The named scenarios: every one validates, has the documented shape, and names resolve as promised."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.catalogue import CATALOGUE_DIR, list_scenarios, resolve_scenario
from scenarios.spec import ScenarioError

EXPECTED = {"planetlab-20110303", "bitbrains-rnd", "scale-20k", "smoke"}


def test_catalogue_lists_the_shipped_scenarios_with_descriptions() -> None:
    listed = list_scenarios()
    assert set(listed) >= EXPECTED
    assert all(listed[name] for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(list_scenarios()))
def test_every_catalogue_scenario_validates(name: str) -> None:
    scenario = resolve_scenario(name)
    assert scenario.name == name
    assert scenario.source_file == str(CATALOGUE_DIR / f"{name}.toml")


def test_planetlab_template_is_the_cloudsim_setup() -> None:
    s = resolve_scenario("planetlab-20110303")
    (ivn,) = s.topology.ivns
    hosts = ivn.host_type_sequence()
    assert len(hosts) == 800
    assert hosts[:4] == ["G4", "G5", "G4", "G5"]
    g4, g5 = s.topology.host_type("G4"), s.topology.host_type("G5")
    assert (g4.cpu_mips, g5.cpu_mips, g4.ram_mb, g4.nic_bandwidth_bps) == (3720, 5320, 4096, 1e9)
    assert (g4.power_w[0], g4.power_w[-1], g5.power_w[0], g5.power_w[-1]) == (86, 117, 93.7, 135)
    assert [(t.mips, t.ram_mb) for t in s.workload.instance_types] == [
        (2500, 870),
        (2000, 1740),
        (1000, 1740),
        (500, 613),
    ]
    assert (s.workload.mapping, s.workload.type_assignment, s.workload.instances) == ("sorted", "blocks", None)
    assert (s.duration_s, s.step_s, s.controller.interval_s) == (86_400, 300, 300)
    assert s.controller.policy == "threshold"
    assert s.controller.params == {"threshold": 0.8, "underload_threshold": 1.0}
    assert not s.rma.enabled


def test_multi_ivn_scenarios_have_their_shape() -> None:
    bb = resolve_scenario("bitbrains-rnd")
    assert [i.name for i in bb.topology.ivns] == ["ivn-a", "ivn-b"]
    assert bb.workload.type_assignment == "from_trace" and bb.rma.target_ivn == "ivn-b"
    scale = resolve_scenario("scale-20k")
    assert (scale.n_hosts, scale.workload.instances, len(scale.topology.ivns)) == (2000, 20_000, 4)
    assert scale.workload.mapping == "sample" and scale.rma.snapshot_interval_s == 300
    smoke = resolve_scenario("smoke")
    assert (smoke.n_hosts, smoke.workload.instances, smoke.n_steps) == (40, 60, 72)


def test_any_planetlab_day_resolves_from_the_template() -> None:
    s = resolve_scenario("planetlab-20110306", {"controller.params.threshold": 0.9})
    assert (s.name, s.workload.subset) == ("planetlab-20110306", "20110306")
    assert s.controller.params == {"threshold": 0.9, "underload_threshold": 1.0}
    assert s.n_hosts == 800


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        resolve_scenario("planetlab-2011")
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in EXPECTED)


def test_a_path_resolves_as_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text((CATALOGUE_DIR / "smoke.toml").read_text(encoding="utf-8"), encoding="utf-8")
    s = resolve_scenario(str(path), {"duration_s": 3600.0})
    assert (s.duration_s, s.source_file) == (3600.0, str(path))
