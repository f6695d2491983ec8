"""Scheduled events: spec validation (one line naming file and field) and the injection into demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios.catalogue import CATALOGUE_DIR
from scenarios.events import event_members, inject_events, real_multiplier
from scenarios.population import InstancePopulation
from scenarios.spec import EventSpec, Scenario, ScenarioError, load_scenario_file
from scenarios.traces import TraceSet

SMOKE = (CATALOGUE_DIR / "smoke.toml").read_text(encoding="utf-8")
STEP = 300.0
N, T = 10, 48


def _scenario(tmp_path: Path, events: str) -> Scenario:
    path = tmp_path / "events.toml"
    path.write_text(SMOKE + "\n" + events, encoding="utf-8")
    return load_scenario_file(path)


def _error(tmp_path: Path, events: str) -> str:
    path = tmp_path / "events.toml"
    text = SMOKE + "\n" + events
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and "Traceback" not in message
    return message


def _population(n: int = N, steps: int = T) -> InstancePopulation:
    cpu = np.full((n, steps), 0.2, dtype=np.float32)
    cpu[0] = 0.6  # a busy one, to see the cap at 1
    trace = TraceSet(
        name="fake",
        instance_ids=tuple(f"s{i}" for i in range(n)),
        step_s=STEP,
        cpu_util=cpu,
        net_rx_bps=np.full((n, steps), 1000.0, dtype=np.float32),
        net_tx_bps=np.full((n, steps), 500.0, dtype=np.float32),
    )
    return InstancePopulation(
        instance_ids=tuple(f"vm-{i:05d}" for i in range(n)),
        trace_ids=trace.instance_ids,
        type_names=("t",) * n,
        mips=np.full(n, 1000.0),
        ram_bytes=np.full(n, 1e9),
        state_bytes=np.full(n, 1e9),
        ivn_index=np.array([0] * (n // 2) + [1] * (n - n // 2), dtype=np.int64),
        demand=trace,
    )


EVENT = """[[events]]
name = "{name}"
kind = "{kind}"
start_s = {start}
end_s = {end}
declared_multiplier = {declared}
{extra}
"""


def _event(name: str = "sale", kind: str = "campaign", start: float = 3000.0, end: float = 6000.0,
           declared: float = 2.0, extra: str = "") -> str:  # fmt: skip
    return EVENT.format(name=name, kind=kind, start=start, end=end, declared=declared, extra=extra)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("event", "field", "needle"),
    [
        (_event(start=6000.0, end=3000.0), "events[0].end_s", "must be after start_s"),
        (_event(declared=-1.0), "events[0].declared_multiplier", "greater than or equal to 0"),
        (_event(declared="nan"), "events[0].declared_multiplier", "finite"),
        (_event(extra="actual_multiplier = inf"), "events[0].actual_multiplier", "finite"),
        (_event(extra="fraction = 0.0"), "events[0].fraction", "greater than 0"),
        (_event(extra="fraction = 1.5"), "events[0].fraction", "less than or equal to 1"),
        (_event(extra='ivn = "ivn-z"'), "events[0].ivn", "unknown IVN 'ivn-z'"),
        (_event(kind="flash_sale"), "events[0].kind", "'maintenance', 'campaign' or 'seasonal_peak'"),
        (_event(extra="ramp_s = 2000.0"), "events[0].ramp_s", "do not fit"),
        (_event(extra='fraction = 0.5\nivn = "ivn-a"'), "events[0]", "at most one of ivn, fraction, instance_ids"),
        (_event(extra="multiplier = 2.0"), "events[0].multiplier", "unknown field"),
    ],
)
def test_bad_event_is_one_line_naming_the_field(tmp_path: Path, event: str, field: str, needle: str) -> None:
    message = _error(tmp_path, event)
    assert f": {field}" in message
    assert needle in message


def test_error_points_at_the_events_line(tmp_path: Path) -> None:
    text = SMOKE + "\n" + _event(extra='ivn = "ivn-z"')
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "ivn-z" in row)
    assert f"events.toml:{line}: events[0].ivn" in _error(tmp_path, _event(extra='ivn = "ivn-z"'))


def test_actual_defaults_to_declared_and_network_follows_kind(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, _event() + _event(name="mw", kind="maintenance", declared=0.0))
    campaign, maintenance = scenario.events
    assert campaign.real_multiplier == 2.0 and campaign.scales_network
    assert maintenance.real_multiplier == 0.0 and not maintenance.scales_network


# ---------------------------------------------------------------------------- injection


def _spec(**fields: object) -> EventSpec:
    base: dict[str, object] = {"name": "e", "kind": "campaign", "start_s": 3000.0, "end_s": 6000.0}
    base["declared_multiplier"] = 2.0
    return EventSpec.model_validate({**base, **fields})


def _with(scenario: Scenario, *events: EventSpec) -> Scenario:
    return scenario.model_copy(update={"events": list(events)})


@pytest.fixture
def smoke(tmp_path: Path) -> Scenario:
    return _scenario(tmp_path, "")


def test_no_events_returns_the_population_untouched_and_draws_nothing(smoke: Scenario) -> None:
    population = _population()
    rng = np.random.default_rng(7)
    out = inject_events(smoke, population, rng=rng)
    assert out is population
    assert rng.random() == np.random.default_rng(7).random()


def test_box_window_multiplies_cpu_and_network_inside_only(smoke: Scenario) -> None:
    population = _population()
    out = inject_events(_with(smoke, _spec(actual_multiplier=3.0)), population, rng=np.random.default_rng(0))
    inside = (np.arange(T) * STEP >= 3000.0) & (np.arange(T) * STEP < 6000.0)
    assert inside.sum() == 10
    cpu = out.demand.cpu_util
    np.testing.assert_allclose(cpu[1:, inside], 0.6, rtol=1e-6)  # 0.2 x 3, the actual effect
    np.testing.assert_allclose(cpu[0, inside], 1.0)  # 0.6 x 3 capped at the VM's size
    np.testing.assert_array_equal(cpu[:, ~inside], population.demand.cpu_util[:, ~inside])
    np.testing.assert_allclose(out.demand.net_rx_bps[:, inside], 3000.0)
    np.testing.assert_allclose(out.demand.net_tx_bps[:, ~inside], 500.0)
    assert out.demand.cpu_util.dtype == np.float32
    assert out.event_members is not None and out.event_members.all()


def test_ramp_builds_up_and_fades_linearly() -> None:
    event = _spec(actual_multiplier=3.0, ramp_s=600.0)
    times = np.arange(T) * STEP
    m = real_multiplier(event, times)
    at = {t: m[int(t / STEP)] for t in (2700.0, 3000.0, 3300.0, 3600.0, 4500.0, 5400.0, 5700.0, 6000.0)}
    assert at == pytest.approx(
        {2700.0: 1.0, 3000.0: 1.0, 3300.0: 2.0, 3600.0: 3.0, 4500.0: 3.0, 5400.0: 3.0, 5700.0: 2.0, 6000.0: 1.0}
    )


def test_maintenance_drains_without_touching_network(smoke: Scenario) -> None:
    population = _population()
    event = _spec(kind="maintenance", declared_multiplier=0.0, actual_multiplier=0.1)
    out = inject_events(_with(smoke, event), population, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out.demand.cpu_util[1:, 10:20], 0.02, rtol=1e-6)
    np.testing.assert_array_equal(out.demand.net_rx_bps, population.demand.net_rx_bps)


def test_overlapping_events_multiply(smoke: Scenario) -> None:
    scenario = _with(smoke, _spec(declared_multiplier=2.0), _spec(name="peak", kind="seasonal_peak",
                                                                  declared_multiplier=1.5, start_s=4500.0))  # fmt: skip
    out = inject_events(scenario, _population(), rng=np.random.default_rng(0))
    assert out.demand.cpu_util[1, 12] == pytest.approx(0.4)
    assert out.demand.cpu_util[1, 16] == pytest.approx(0.6)


def test_selection_by_ivn_and_by_ids(smoke: Scenario) -> None:
    population = _population()
    by_ivn = event_members(_with(smoke, _spec(ivn="ivn-b")), population, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(by_ivn[0], population.ivn_index == 1)
    by_ids = event_members(
        _with(smoke, _spec(instance_ids=["vm-00002", "vm-00007"])), population, rng=np.random.default_rng(0)
    )
    assert np.flatnonzero(by_ids[0]).tolist() == [2, 7]
    out = inject_events(_with(smoke, _spec(ivn="ivn-b")), population, rng=np.random.default_rng(0))
    assert (out.demand.cpu_util[:5, 10:20] == population.demand.cpu_util[:5, 10:20]).all()
    assert not (out.demand.cpu_util[5:, 10:20] == population.demand.cpu_util[5:, 10:20]).any()


def test_unknown_instance_id_is_one_line_naming_the_field(smoke: Scenario) -> None:
    with pytest.raises(ScenarioError, match=r"events\[0\]\.instance_ids: unknown instance 'vm-99999'"):
        event_members(_with(smoke, _spec(instance_ids=["vm-99999"])), _population(), rng=np.random.default_rng(0))


def test_random_fraction_is_seeded_and_sized(smoke: Scenario) -> None:
    population = _population(n=200)
    scenario = _with(smoke, _spec(fraction=0.25))
    first = event_members(scenario, population, rng=np.random.default_rng(5))
    again = event_members(scenario, population, rng=np.random.default_rng(5))
    other = event_members(scenario, population, rng=np.random.default_rng(6))
    assert first.sum() == 50
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_event_past_the_trace_changes_nothing(smoke: Scenario) -> None:
    population = _population()
    out = inject_events(_with(smoke, _spec(start_s=1e6, end_s=2e6)), population, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out.demand.cpu_util, population.demand.cpu_util)
