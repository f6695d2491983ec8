"""ThresholdPolicy on hand-computed fleets: who leaves, where they go, and what they never do."""

from __future__ import annotations

import pytest

from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.null_policy import NullPolicy
from policies.records import MigrationPlan, MoveReason
from policies.threshold_policy import ThresholdPolicy
from tests.fakes.fleet_builder import FleetBuilder

CHEAP_POWER = tuple(50.0 + k for k in range(11))  # 1 W per 10 % of load: a very efficient host
RULES = ("first_fit", "least_loaded", "power_aware_best_fit")


def targets(plan: MigrationPlan) -> dict[str, str | None]:
    return {move.instance_id: move.target_host for move in plan.moves}


def overloaded_source(builder: FleetBuilder) -> FleetBuilder:
    """h0 at 90 %: MMT sheds i1 (least memory), after which h0 is at 50 %."""
    return (
        builder.host("h0")
        .instance("i0", "h0", request_mips=500, ram_bytes=2e9)
        .instance("i1", "h0", request_mips=400, ram_bytes=1e9)
    )


def test_null_policy_never_migrates() -> None:
    fleet = overloaded_source(FleetBuilder()).host("h1").build()
    assert NullPolicy().decide(fleet) == MigrationPlan.empty()


def test_moves_the_smallest_memory_instance_off_an_overloaded_host() -> None:
    fleet = overloaded_source(FleetBuilder()).host("h1").build()

    plan = ThresholdPolicy(threshold=0.8).decide(fleet)

    assert len(plan.moves) == 1
    move = plan.moves[0]
    assert (move.instance_id, move.target_ivn, move.target_host, move.source_ivn) == ("i1", "ivn-a", "h1", "ivn-a")
    assert move.reason is MoveReason.OVERLOAD
    assert move.risk is not None
    assert (move.risk.risk_score, move.risk.predicted_load) == pytest.approx((0.9, 0.9))
    assert plan.assessments == {"i1": move.risk}


def test_sheds_instances_until_the_host_is_back_under_the_threshold() -> None:
    fleet = (
        FleetBuilder()
        .host("h0")
        .instance("big", "h0", request_mips=600, ram_bytes=3e9)
        .instance("a", "h0", request_mips=300, ram_bytes=1e9)
        .instance("b", "h0", request_mips=300, ram_bytes=1e9)  # tie on memory: "a" goes first
        .instance("c", "h0", request_mips=100, ram_bytes=2e9)
        .host("h1", capacity_mips=4000)
        .build()
    )
    # 1300 MIPS on 1000: shed a (1000 left), b (700 ≤ 800): stop before c.
    plan = ThresholdPolicy(threshold=0.8, target_selection="first_fit").decide(fleet)
    assert targets(plan) == {"a": "h1", "b": "h1"}


def test_risk_score_is_capped_at_one() -> None:
    fleet = (
        FleetBuilder()
        .host("h0")
        .instance("i0", "h0", request_mips=1500, ram_bytes=2e9)
        .instance("i1", "h0", request_mips=100, ram_bytes=1e9)
        .host("h1", capacity_mips=4000)
        .build()
    )
    plan = ThresholdPolicy(threshold=0.8, target_selection="first_fit").decide(fleet)
    risk = plan.moves[0].risk
    assert risk is not None
    assert (risk.risk_score, risk.predicted_load) == pytest.approx((1.0, 1.6))


@pytest.mark.parametrize("rule", RULES)
def test_never_targets_overloaded_unavailable_or_too_small_hosts(rule: str) -> None:
    fleet = (
        overloaded_source(FleetBuilder())
        .host("busy")
        .instance("x", "busy", request_mips=850)  # overloaded itself
        .host("down", available=False)
        .host("no-ram", ram_bytes=0.5e9)
        .host("slow-pe", capacity_mips=4000, pe_mips=300)  # i1 asks 400 MIPS from one PE
        .host("nearly-full")
        .instance("y", "nearly-full", request_mips=500)  # 500 + 400 > 800
        .host("ok", power_w=(300.0,) * 11)  # the only fit, even though it looks worst
        .build()
    )
    plan = ThresholdPolicy(threshold=0.8, target_selection=rule).decide(fleet)
    assert targets(plan) == {"i1": "ok"}  # x (850 MIPS) fits nowhere at 80 %


def three_candidates() -> FleetSnapshot:
    """i1 (400 MIPS) must go; three hosts fit and each rule prefers a different one.

    =====  ====  ======  ==========  ===============  ==========
    host   cap   load    util after  power increase   first fit
    =====  ====  ======  ==========  ===============  ==========
    h1     1000  300     0.70        100 W x 0.4 = 40  yes
    h2     2000  200     0.30        100 W x 0.2 = 20
    h3     1000  0       0.40        1 W x 4 = 4
    =====  ====  ======  ==========  ===============  ==========
    """
    return (
        overloaded_source(FleetBuilder())
        .host("h1")
        .instance("l1", "h1", request_mips=300)
        .host("h2", capacity_mips=2000)
        .instance("l2", "h2", request_mips=200)
        .host("h3", power_w=CHEAP_POWER)
        .build()
    )


@pytest.mark.parametrize(
    ("rule", "expected"), [("first_fit", "h1"), ("least_loaded", "h2"), ("power_aware_best_fit", "h3")]
)
def test_each_target_rule_chooses_as_defined(rule: str, expected: str) -> None:
    plan = ThresholdPolicy(threshold=0.8, target_selection=rule).decide(three_candidates())
    assert targets(plan) == {"i1": expected}


@pytest.mark.parametrize("rule", RULES)
def test_ties_go_to_the_lowest_host_index(rule: str) -> None:
    fleet = overloaded_source(FleetBuilder()).host("h1").host("h2").build()
    plan = ThresholdPolicy(threshold=0.8, target_selection=rule).decide(fleet)
    assert targets(plan) == {"i1": "h1"}


def two_overloaded_sources(**target_kwargs: float) -> FleetSnapshot:
    """a1 and b1 (300 MIPS, 1 GB each) leave h0 and h1; PABFD prefers "cheap" for both, if room."""
    return (
        FleetBuilder()
        .host("h0")
        .instance("a0", "h0", request_mips=600, ram_bytes=2e9)
        .instance("a1", "h0", request_mips=300, ram_bytes=1e9)
        .host("h1")
        .instance("b0", "h1", request_mips=600, ram_bytes=2e9)
        .instance("b1", "h1", request_mips=300, ram_bytes=1e9)
        .host("cheap", power_w=CHEAP_POWER, **target_kwargs)
        .instance("c0", "cheap", request_mips=300, ram_bytes=1e9)
        .host("costly")
        .build()
    )


def test_planned_cpu_affects_later_placements() -> None:
    # "cheap" goes 300 -> 600 with a1; b1 would take it to 900 > 800, so b1 goes to "costly".
    plan = ThresholdPolicy(threshold=0.8).decide(two_overloaded_sources())
    assert targets(plan) == {"a1": "cheap", "b1": "costly"}


def test_planned_memory_affects_later_placements() -> None:
    # Ample CPU on "cheap", but 1.5 GB free memory: room for a1 (1 GB) and then not for b1.
    plan = ThresholdPolicy(threshold=0.8).decide(two_overloaded_sources(capacity_mips=4000, ram_bytes=2.5e9))
    assert targets(plan) == {"a1": "cheap", "b1": "costly"}


def test_instance_that_fits_nowhere_stays() -> None:
    fleet = overloaded_source(FleetBuilder()).host("h1").instance("x", "h1", request_mips=700).build()
    assert ThresholdPolicy(threshold=0.8).decide(fleet).moves == ()


def test_instances_in_migration_are_not_selected() -> None:
    fleet = (
        FleetBuilder()
        .host("h0")
        .instance("moving", "h0", request_mips=400, ram_bytes=1e9, in_migration=True)
        .instance("stays", "h0", request_mips=500, ram_bytes=2e9)
        .host("h1")
        .build()
    )
    assert targets(ThresholdPolicy(threshold=0.8).decide(fleet)) == {"stays": "h1"}


def cross_ivn_fleet(allowed: tuple[str, ...] | None = None) -> FleetSnapshot:
    """i1 must leave h0 (ivn-a); the only other ivn-a host is full, b1 in ivn-b has room."""
    return (
        FleetBuilder(ivns=("ivn-a", "ivn-b"))
        .host("h0")
        .instance("i0", "h0", request_mips=500, ram_bytes=2e9)
        .instance("i1", "h0", request_mips=400, ram_bytes=1e9, allowed_ivns=allowed)
        .host("a-full")
        .instance("x", "a-full", request_mips=700)
        .host("b1", ivn="ivn-b")
        .build()
    )


def test_moves_across_ivns_only_when_its_own_ivn_has_no_room() -> None:
    plan = ThresholdPolicy(threshold=0.8).decide(cross_ivn_fleet())
    [move] = plan.moves
    assert (move.instance_id, move.source_ivn, move.target_ivn, move.target_host) == ("i1", "ivn-a", "ivn-b", "b1")


def test_cross_ivn_can_be_disabled_or_forbidden_per_instance() -> None:
    assert ThresholdPolicy(threshold=0.8, allow_cross_ivn=False).decide(cross_ivn_fleet()).moves == ()
    assert ThresholdPolicy(threshold=0.8).decide(cross_ivn_fleet(allowed=("ivn-a",))).moves == ()
    assert len(ThresholdPolicy(threshold=0.8).decide(cross_ivn_fleet(allowed=("ivn-a", "ivn-b"))).moves) == 1


def test_same_ivn_is_preferred_even_when_another_ivn_is_better() -> None:
    fleet = (
        overloaded_source(FleetBuilder(ivns=("ivn-a", "ivn-b")))
        .host("b-cheap", ivn="ivn-b", power_w=CHEAP_POWER)
        .host("a1", ivn="ivn-a")
        .build()
    )
    assert targets(ThresholdPolicy(threshold=0.8).decide(fleet)) == {"i1": "a1"}


def test_underload_evacuates_the_least_utilised_host_onto_active_hosts() -> None:
    fleet = (
        FleetBuilder()
        .host("idle")  # never a target: it is switched off
        .host("active")
        .instance("a", "active", request_mips=500)
        .host("light")
        .instance("l1", "light", request_mips=100)
        .instance("l2", "light", request_mips=150)
        .build()
    )
    plan = ThresholdPolicy(threshold=0.8, underload_threshold=0.3).decide(fleet)
    assert targets(plan) == {"l2": "active", "l1": "active"}
    assert [m.instance_id for m in plan.moves] == ["l2", "l1"]  # by decreasing request
    assert all(m.reason is MoveReason.UNDERLOAD for m in plan.moves)


def test_underload_evacuation_is_all_or_nothing() -> None:
    """ "src" (x 250, y 200): x fits "target" exactly (550 + 250 = 800) but then y fits nowhere.

    Nothing leaves "src", and x's tentative placement is undone: "small" (examined after "src",
    util 0.48 > 0.45) can then use the target's full headroom (550 + 240 = 790).
    """
    fleet = (
        FleetBuilder()
        .host("target")
        .instance("t", "target", request_mips=550)
        .host("src")
        .instance("x", "src", request_mips=250)
        .instance("y", "src", request_mips=200)
        .host("small", capacity_mips=500)
        .instance("z", "small", request_mips=240)
        .host("idle")
        .build()
    )
    plan = ThresholdPolicy(threshold=0.8, underload_threshold=0.5).decide(fleet)
    assert targets(plan) == {"z": "target"}


def test_underload_never_empties_a_host_that_just_received_an_instance() -> None:
    fleet = (
        overloaded_source(FleetBuilder())
        .host("receiver", power_w=CHEAP_POWER)
        .instance("r", "receiver", request_mips=100)
        .host("other")
        .instance("o", "other", request_mips=600)
        .build()
    )
    plan = ThresholdPolicy(threshold=0.8, underload_threshold=0.9).decide(fleet)
    assert targets(plan) == {"i1": "receiver"}
    ids = [m.instance_id for m in plan.moves]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"threshold": 1.7}, "threshold"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"underload_threshold": -0.1}, "underload_threshold"),
        ({"target_selection": "random"}, "target_selection"),
        ({"instance_selection": "largest"}, "instance_selection"),
        ({"allow_cross_ivn": "yes"}, "allow_cross_ivn"),
    ],
)
def test_bad_parameters_are_rejected_naming_them(params: dict, parameter: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        ThresholdPolicy(**params)
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"controller.params.{parameter}: ")
