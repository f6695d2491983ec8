"""ConsolidationPolicy: detector + VM selection + PABFD on small fleets (reference cloudsim-planetlab.md §1.8)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies.consolidation_policy import CONSOLIDATION_POLICIES, ConsolidationPolicy
from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.overload_detectors import NullDetector, StaticThreshold
from policies.records import MigrationPlan, MoveReason
from policies.vm_selection import MinimumMigrationTime
from tests.fakes.fleet_builder import FleetBuilder


def moves(plan: MigrationPlan) -> list[tuple[str, str | None, MoveReason]]:
    return [(m.instance_id, m.target_host, m.reason) for m in plan.moves]


def thr(threshold: float = 0.8, underload: bool = False) -> ConsolidationPolicy:
    return ConsolidationPolicy(StaticThreshold(threshold), MinimumMigrationTime(), underload=underload)


def overloaded_pair(target_load: float) -> FleetSnapshot:
    builder = FleetBuilder().host("h0").host("h1").host("h2")
    builder.instance("a", "h0", request_mips=500.0, ram_bytes=2e9)
    builder.instance("b", "h0", request_mips=400.0, ram_bytes=1e9)
    builder.instance("c", "h1", request_mips=target_load)
    return builder.build()


def test_null_detector_without_underload_never_moves() -> None:
    plan = ConsolidationPolicy(NullDetector(), MinimumMigrationTime(), underload=False).decide(overloaded_pair(200.0))
    assert plan.moves == ()


def test_evicts_by_selection_until_the_detector_clears_the_host() -> None:
    # h0 at 0.9 > 0.8: MMT takes b (1 GB), leaving 0.5; PABFD ties on linear power -> lowest index h1.
    assert moves(thr().decide(overloaded_pair(200.0))) == [("b", "h1", MoveReason.OVERLOAD)]


def test_target_the_detector_would_overload_is_skipped() -> None:
    # h1 at 0.5 + 0.4 = 0.9 > 0.8 after allocation: b goes to the idle h2 instead.
    assert moves(thr().decide(overloaded_pair(500.0))) == [("b", "h2", MoveReason.OVERLOAD)]


def test_hosts_idle_at_the_start_skip_the_after_allocation_test() -> None:
    builder = FleetBuilder().host("h0").host("h1")
    builder.instance("a", "h0", request_mips=900.0)
    # a alone would overload any host under THR 0.8, but the idle h1 is not asked (CloudSim §1.8).
    assert moves(thr().decide(builder.build())) == [("a", "h1", MoveReason.OVERLOAD)]


def test_instance_that_passes_no_test_stays() -> None:
    builder = FleetBuilder().host("h0").host("h1")
    builder.instance("a", "h0", request_mips=500.0).instance("b", "h0", request_mips=400.0)
    builder.instance("c", "h1", request_mips=500.0)
    assert thr().decide(builder.build()).moves == ()


def test_history_based_detector_relieves_a_volatile_host_a_threshold_keeps() -> None:
    builder = FleetBuilder().host("h0").host("h1")
    builder.instance("a", "h0", request_mips=750.0)
    volatile = np.array([[0.2, 0.9] * 6])  # IQR 0.7 -> T = 1 - 1.5 * 0.7 < 0.75
    fleet = dataclasses.replace(builder.build(), instance_cpu_history=volatile)
    assert CONSOLIDATION_POLICIES["thr-mmt"](underload=False).decide(fleet).moves == ()
    assert moves(CONSOLIDATION_POLICIES["iqr-mmt"](underload=False).decide(fleet)) == [("a", "h1", MoveReason.OVERLOAD)]


def test_underload_empties_the_least_utilised_host_onto_an_active_one() -> None:
    builder = FleetBuilder().host("h0").host("h1").host("h2")
    builder.instance("small", "h0", request_mips=100.0).instance("mid", "h1", request_mips=500.0)
    fleet = builder.build()
    assert moves(thr(underload=True).decide(fleet)) == [("small", "h1", MoveReason.UNDERLOAD)]
    assert thr(underload=False).decide(fleet).moves == ()


def test_underload_is_all_or_nothing() -> None:
    builder = FleetBuilder().host("h0").host("h1").host("h2")
    builder.instance("x", "h0", request_mips=150.0).instance("y", "h0", request_mips=150.0)
    builder.instance("z", "h1", request_mips=600.0).instance("w", "h2", request_mips=700.0)
    # x fits on h1 (0.75) but then y fits nowhere under 0.8, so h0 keeps both; h1 and h2 cannot
    # empty onto examined or full hosts either.
    assert thr(underload=True).decide(builder.build()).moves == ()


def test_failed_evacuation_gives_its_headroom_back() -> None:
    builder = FleetBuilder().host("h0").host("h1").host("h2").host("h3", capacity_mips=500.0, ram_bytes=1e9)
    builder.instance("x", "h0", request_mips=150.0).instance("y", "h0", request_mips=150.0)
    builder.instance("z", "h1", request_mips=600.0).instance("w", "h2", request_mips=700.0)
    builder.instance("v", "h3", request_mips=190.0, ram_bytes=1e9)
    # h0 (0.3) puts x on h1 (0.75), then y fits nowhere: undone. h3 (0.38) then needs h1 back at
    # 0.6, since 0.6 + 0.19 = 0.79 passes THR 0.8 and 0.94 would not.
    assert moves(thr(underload=True).decide(builder.build())) == [("v", "h1", MoveReason.UNDERLOAD)]


def test_lr_and_lrr_policies_plan_alike() -> None:
    rng = np.random.default_rng(2)
    builder = FleetBuilder()
    for h in range(6):
        builder.host(f"h{h}", capacity_mips=2000.0)
    for i in range(12):
        builder.instance(f"v{i}", f"h{i % 6}", request_mips=float(rng.uniform(100, 900)), ram_bytes=870e6)
    fleet = builder.build()
    history = np.clip(rng.normal(0.5, 0.25, (12, 30)), 0.01, 1.0)
    fleet = dataclasses.replace(fleet, instance_cpu_history=history)
    lr = CONSOLIDATION_POLICIES["lr-mmt"]().decide(fleet)
    lrr = CONSOLIDATION_POLICIES["lrr-mmt"]().decide(fleet)
    assert moves(lr) == moves(lrr)


@pytest.mark.parametrize("name", sorted(CONSOLIDATION_POLICIES))
def test_named_combinations_build_with_defaults_and_decide(name: str) -> None:
    factory = CONSOLIDATION_POLICIES[name]
    policy = factory(rng=np.random.default_rng(0)) if name.endswith("-rs") else factory()
    assert policy.name == name
    assert factory.__doc__
    plan = policy.decide(overloaded_pair(200.0))
    assert all(m.target_host in {"h1", "h2"} for m in plan.moves)


@pytest.mark.parametrize("safety", [0, -1.0, float("nan"), "high", True])
def test_bad_safety_is_rejected(safety: object) -> None:
    with pytest.raises(PolicyConfigError, match="safety"):
        CONSOLIDATION_POLICIES["iqr-mmt"](safety=safety)


def test_bad_target_rule_or_underload_is_rejected() -> None:
    with pytest.raises(PolicyConfigError, match="target_selection"):
        ConsolidationPolicy(NullDetector(), MinimumMigrationTime(), target_selection="best")
    with pytest.raises(PolicyConfigError, match="underload"):
        ConsolidationPolicy(NullDetector(), MinimumMigrationTime(), underload="yes")  # type: ignore[arg-type]
