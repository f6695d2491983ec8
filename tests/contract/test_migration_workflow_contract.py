"""The migration workflow, unchanged, against three implementations of its ports.

The fakes in ``tests/fakes`` driven by the deterministic ``WorkflowRunner``; the SimPy twin
(``sim.world``) driven by ``sim.driver``; and the live adapters (real IVNs, Mirror Stores, agents,
HAProxy and redis-server processes) driven by ``realworld.driver`` on the wall clock (slow). The same
``initiate_migration`` generator must reach the same outcome and shift traffic through the same steps
in all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mirrortwin.config import load_settings
from mirrortwin.wiring import make_population, resolve_for_policy, seed_streams
from policies.records import MigrationOutcome, MirrorSnapshot, RiskAssessment
from policies.workflow import WorkflowSettings, initiate_migration
from sim.driver import drive
from sim.world import build_world
from tests.fakes.fake_world import make_world

SETTINGS = WorkflowSettings(risk_threshold=0.5, traffic_steps=(0.1, 0.25, 0.5, 1.0), dwell_s=30.0)
INSTANCE = "vm-00000"
TARGET = "ivn-b"


@dataclass
class Outcome:
    result: Any
    replacement_weights: list[float]
    source_serving: bool


def _risk(score: float) -> RiskAssessment:
    return RiskAssessment(INSTANCE, risk_score=score, predicted_load=score, health_metrics={})


def run_on_fakes(*, score: float, healthy: bool, capacity: bool) -> Outcome:
    snapshot = MirrorSnapshot(INSTANCE, timestamp=0.0, memory_image=870_000_000, ivn=TARGET)
    world = make_world(
        running=[INSTANCE],
        capacity={TARGET: capacity},
        snapshots={(INSTANCE, TARGET): snapshot},
        health={f"{INSTANCE}@{TARGET}": [healthy] * 8},
    )
    result = world.runner.run_to_completion(
        initiate_migration(INSTANCE, TARGET, risk=_risk(score), ports=world.ports, settings=SETTINGS)
    )
    weights = [sum(w for backend, w in ws.items() if backend != INSTANCE) for _, ws in world.lb.weights_history]
    return Outcome(result, weights, INSTANCE in world.provider.running)


def run_on_twin(traces_root, *, score: float, healthy: bool, capacity: bool) -> Outcome:
    overrides: dict[str, Any] = {"controller.policy": "null", "controller.params": {}}
    if not capacity:
        overrides["topology.ivns.1.hosts"] = [{"type": "G4", "count": 1}]
    spec = resolve_for_policy("smoke", policy=None, overrides=overrides)
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    world = build_world(spec, population, rng=run_rng, health_failure_probability=0.0 if healthy else 1.0)
    i = world.dc.instance_index[INSTANCE]
    world.dc.set_demand(0)
    if not capacity:
        # fill the single ivn-b host so no replacement fits
        world.dc.request[i] = world.dc.mips[i]
        world.dc.host_available[world.dc.host_ivn == 1] = False
    world.env.run(until=900.0)  # the RMA has shipped a base snapshot and deltas into ivn-b by now
    proc = drive(
        world.env, initiate_migration(INSTANCE, TARGET, risk=_risk(score), ports=world.ports, settings=SETTINGS)
    )
    world.env.run(until=proc)
    weights = [w for _, action, iid, w in world.lb.log if action == "weights" and iid == INSTANCE]
    host = world.dc.host_ids[world.dc.host_of[i]]
    return Outcome(proc.value, weights, host.startswith("ivn-a/"))


CASES = {
    "succeeds": {"score": 0.9, "healthy": True, "capacity": True},
    "rolls_back": {"score": 0.9, "healthy": False, "capacity": True},
    "low_risk": {"score": 0.1, "healthy": True, "capacity": True},
    "no_capacity": {"score": 0.9, "healthy": True, "capacity": False},
}
EXPECTED = {
    "succeeds": (MigrationOutcome.SUCCEEDED, [0.1, 0.25, 0.5, 1.0], False),
    "rolls_back": (MigrationOutcome.ROLLED_BACK, [0.1], True),
    "low_risk": (MigrationOutcome.LOW_RISK, [], True),
    "no_capacity": (MigrationOutcome.INSUFFICIENT_CAPACITY, [], True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("world", ["fakes", "twin"])
def test_same_workflow_same_behaviour(world, case, request):
    if world == "fakes":
        got = run_on_fakes(**CASES[case])
    else:
        got = run_on_twin(request.getfixturevalue("traces_root"), **CASES[case])
    outcome, weights, source_serving = EXPECTED[case]
    assert got.result.outcome == outcome
    assert got.replacement_weights == weights
    assert got.source_serving == source_serving
    if outcome is MigrationOutcome.SUCCEEDED:
        assert got.result.schedule is not None
        assert got.result.end_time >= got.result.start_time + SETTINGS.dwell_s * len(SETTINGS.traffic_steps)


def run_on_live(tmp_path, *, score: float, healthy: bool, capacity: bool) -> Outcome:
    """The live adapters: real IVNs, Mirror Stores, agents, HAProxy and redis-server processes."""
    from mirrortwin.live_fleet import LiveFleet
    from policies.workflow import MigrationPorts
    from realworld.identities import LogicalProvider
    from tests.e2e.live_harness import require_live_tools, two_ivn_config, wait_for

    require_live_tools()
    overrides: dict[str, Any] = {}
    if not healthy:
        overrides["faults"] = {"freeze_replacements": ["redis-1"]}
    config = two_ivn_config(tmp_path / "fleet", **overrides)
    if not capacity:  # ivn-b's only host is smaller than the instance
        ivns = [i.model_dump() for i in config.ivns]
        ivns[1]["hosts"] = [{"name": "h0", "cores": 0.25, "memory_mb": 2048}]
        config = config.model_copy(update={"ivns": [type(config.ivns[0]).model_validate(i) for i in ivns]})
    iid = "redis-1"
    with LiveFleet(config) as fleet:
        wait_for(lambda: fleet.store_for("ivn-b", iid) is not None and fleet.store_for("ivn-b", iid).latest(iid),
                 30, "a mirror snapshot in ivn-b")
        ports = MigrationPorts(clock=fleet.clock, provider=LogicalProvider(fleet.provider, fleet.identities),
                               store=fleet.mirror_store, lb=fleet.split_lb)
        settings = WorkflowSettings(risk_threshold=0.5, traffic_steps=SETTINGS.traffic_steps, dwell_s=1.0)
        result = fleet.driver.run_to_completion(
            initiate_migration(iid, "ivn-b", risk=RiskAssessment(iid, score, score, {}), ports=ports,
                               settings=settings),
            timeout_s=120,
        )
        weights = [sum(w for b, w in ws.items() if b != iid) for kind, i, ws in fleet.split_lb.events
                   if kind == "weights" and i == iid]
        return Outcome(result, weights, fleet.identities.physical(iid) == iid)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_same_workflow_same_behaviour_on_the_live_adapters(case, tmp_path):
    got = run_on_live(tmp_path, **CASES[case])
    outcome, weights, source_serving = EXPECTED[case]
    assert got.result.outcome == outcome, got.result.reason
    assert got.replacement_weights == weights
    assert got.source_serving == source_serving
