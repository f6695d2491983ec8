"""Properties of ThresholdPolicy plans on random fleets (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.fleet import FleetSnapshot
from policies.records import MoveReason
from policies.target_selection import TARGET_SELECTIONS
from policies.threshold_policy import ThresholdPolicy
from tests.fakes.fleet_builder import FleetBuilder

IVNS = ("ivn-a", "ivn-b")


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    n_ivns = draw(st.integers(1, 2))
    builder = FleetBuilder(ivns=IVNS[:n_ivns])
    n_hosts = draw(st.integers(1, 8))
    for h in range(n_hosts):
        capacity = draw(st.sampled_from([1000.0, 2000.0, 4000.0]))
        builder.host(
            f"h{h}",
            capacity_mips=capacity,
            pe_mips=draw(st.sampled_from([capacity, capacity / 2])),
            ram_bytes=draw(st.sampled_from([2e9, 4e9, 16e9])),
            ivn=IVNS[draw(st.integers(0, n_ivns - 1))],
            power_w=tuple(sorted(draw(st.lists(st.floats(50, 300), min_size=11, max_size=11)))),
            available=draw(st.integers(0, 5)) > 0,
        )
    hosts = [f"h{h}" for h in range(n_hosts)]
    for i in range(draw(st.integers(0, 20))):
        builder.instance(
            f"i{i}",
            draw(st.sampled_from(hosts)),
            request_mips=draw(st.floats(0, 2500)),
            ram_bytes=draw(st.sampled_from([0.5e9, 1e9, 1.7e9])),
            in_migration=draw(st.integers(0, 9)) == 0,
            allowed_ivns=draw(st.sampled_from([None, ("ivn-a",), IVNS])),
        )
    return builder.build()


@settings(max_examples=300, deadline=None)
@given(
    fleet=fleets(),
    threshold=st.sampled_from([0.5, 0.7, 0.8, 1.0]),
    underload=st.sampled_from([None, 0.2, 0.5, 1.0]),
    rule=st.sampled_from(sorted(TARGET_SELECTIONS)),
)
def test_plans_never_overfill_targets_or_move_an_instance_twice(
    fleet: FleetSnapshot, threshold: float, underload: float | None, rule: str
) -> None:
    plan = ThresholdPolicy(threshold=threshold, target_selection=rule, underload_threshold=underload).decide(fleet)

    ids = [move.instance_id for move in plan.moves]
    assert len(ids) == len(set(ids))

    host_index = {host: h for h, host in enumerate(fleet.host_ids)}
    inst_index = {iid: i for i, iid in enumerate(fleet.instance_ids)}
    load = fleet.host_request_mips()
    ram = fleet.host_ram_used_bytes()
    util_before = load / fleet.host_cpu_capacity_mips
    sources, targets = set(), set()
    for move in plan.moves:
        i = inst_index[move.instance_id]
        assert move.target_host is not None
        source, target = int(fleet.instance_host[i]), host_index[move.target_host]
        assert not fleet.instance_in_migration[i]
        assert fleet.host_available[target]
        assert move.target_ivn == fleet.ivn_names[fleet.host_ivn[target]]
        assert fleet.host_pe_mips[target] >= fleet.instance_cpu_request_mips[i]
        if move.reason is MoveReason.OVERLOAD:
            assert util_before[source] > threshold
        else:
            assert underload is not None and 0 < util_before[source] < underload
            assert move.target_ivn == move.source_ivn
        if move.target_ivn != move.source_ivn and fleet.instance_allowed_ivns is not None:
            assert fleet.instance_allowed_ivns[i, fleet.host_ivn[target]]
        load[source] -= fleet.instance_cpu_request_mips[i]
        load[target] += fleet.instance_cpu_request_mips[i]
        ram[source] -= fleet.instance_ram_bytes[i]
        ram[target] += fleet.instance_ram_bytes[i]
        sources.add(source)
        targets.add(target)

    assert not sources & targets
    for target in targets:
        assert not util_before[target] > threshold
        assert load[target] <= threshold * fleet.host_cpu_capacity_mips[target] + 1e-6
        assert ram[target] <= fleet.host_ram_bytes[target]


@settings(max_examples=100, deadline=None)
@given(fleet=fleets(), rule=st.sampled_from(sorted(TARGET_SELECTIONS)))
def test_decide_does_not_modify_the_fleet(fleet: FleetSnapshot, rule: str) -> None:
    before = {name: np.copy(getattr(fleet, name)) for name in ("instance_host", "instance_cpu_request_mips")}
    ThresholdPolicy(target_selection=rule, underload_threshold=0.5).decide(fleet)
    for name, values in before.items():
        assert np.array_equal(getattr(fleet, name), values)
