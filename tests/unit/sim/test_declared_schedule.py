"""The twin tells the policy what was declared, never what an event really does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenarios.catalogue import CATALOGUE_DIR
from scenarios.events import inject_events
from scenarios.population import InstancePopulation
from scenarios.spec import Scenario, load_scenario_file
from scenarios.traces import TraceSet
from sim.adapters import declared_schedule

SMOKE = (CATALOGUE_DIR / "smoke.toml").read_text(encoding="utf-8")
N, T = 8, 72


def scenario(tmp_path: Path, actual: float, ramp_s: float) -> Scenario:
    events = f"""
[[events]]
name = "sale"
kind = "campaign"
start_s = 3000.0
end_s = 9000.0
declared_multiplier = 2.0
actual_multiplier = {actual}
ramp_s = {ramp_s}

[[events]]
name = "patching"
kind = "maintenance"
start_s = 12000.0
end_s = 15000.0
declared_multiplier = 0.0
actual_multiplier = 0.1
fraction = 0.25
"""
    path = tmp_path / f"events-{actual}-{ramp_s}.toml"
    path.write_text(SMOKE + events, encoding="utf-8")
    return load_scenario_file(path)


def population() -> InstancePopulation:
    trace = TraceSet(
        name="fake",
        instance_ids=tuple(f"s{i}" for i in range(N)),
        step_s=300.0,
        cpu_util=np.full((N, T), 0.3, np.float32),
    )
    return InstancePopulation(
        instance_ids=tuple(f"vm-{i:05d}" for i in range(N)),
        trace_ids=trace.instance_ids,
        type_names=("t",) * N,
        mips=np.full(N, 1000.0),
        ram_bytes=np.full(N, 1e9),
        state_bytes=np.full(N, 1e9),
        ivn_index=np.zeros(N, dtype=np.int64),
        demand=trace,
    )


def test_declared_schedule_is_the_declaration_with_the_drawn_instances(tmp_path: Path) -> None:
    spec = scenario(tmp_path, 2.6, 600.0)
    injected = inject_events(spec, population(), rng=np.random.default_rng(4))
    sale, patching = declared_schedule(spec, injected)
    assert (sale.name, sale.kind, sale.start_s, sale.end_s, sale.multiplier) == (
        "sale",
        "campaign",
        3000.0,
        9000.0,
        2.0,
    )
    assert sale.instance_ids is None  # every instance
    assert patching.multiplier == 0.0
    assert injected.event_members is not None
    drawn = tuple(injected.instance_ids[i] for i in np.flatnonzero(injected.event_members[1]))
    assert patching.instance_ids == drawn and len(drawn) == 2


def test_changing_the_real_effect_changes_demand_but_not_the_declaration(tmp_path: Path) -> None:
    built = []
    for actual, ramp in ((2.6, 600.0), (1.2, 0.0)):
        spec = scenario(tmp_path, actual, ramp)
        injected = inject_events(spec, population(), rng=np.random.default_rng(4))
        built.append((declared_schedule(spec, injected), injected.demand.cpu_util))
    (first, demand_a), (second, demand_b) = built
    assert first == second
    assert not np.array_equal(demand_a, demand_b)
