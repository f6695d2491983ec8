"""The compiled ThresholdPolicy plans exactly like the numpy implementation it replaced (hypothesis).

Fleets are drawn from small discrete value sets so that exact ties (equal hosts, requests filling a
host to its threshold) are common: those are where a reordered sum or a ``<=`` for ``<`` would
show. Multi-PE instances and hosts with PE counts are drawn too; the oracle knows the PE rule.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.fleet import FleetSnapshot
from policies.instance_selection import INSTANCE_SELECTIONS
from policies.target_selection import TARGET_SELECTIONS
from policies.threshold_policy import ThresholdPolicy
from tests.fakes.fleet_builder import FleetBuilder
from tests.unit.policies.threshold_reference import ReferenceThresholdPolicy

IVNS = ("ivn-a", "ivn-b", "ivn-c")
POWER_TABLES = (
    tuple(100.0 + 10.0 * k for k in range(11)),
    (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0),
    (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0),
)


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    n_ivns = draw(st.integers(1, 3))
    builder = FleetBuilder(ivns=IVNS[:n_ivns])
    n_hosts = draw(st.integers(1, 12))
    for h in range(n_hosts):
        capacity = draw(st.sampled_from([1000.0, 2000.0, 3720.0, 5320.0]))
        builder.host(
            f"h{h}",
            capacity_mips=capacity,
            pe_mips=draw(st.sampled_from([capacity, capacity / 2, capacity / 4])),
            ram_bytes=draw(st.sampled_from([2e9, 4e9, 16e9])),
            ivn=IVNS[draw(st.integers(0, n_ivns - 1))],
            power_w=draw(st.sampled_from(POWER_TABLES)),
            available=draw(st.integers(0, 7)) > 0,
        )
    hosts = [f"h{h}" for h in range(n_hosts)]
    n_inst = draw(st.integers(0, 30))
    for i in range(n_inst):
        builder.instance(
            f"i{i}",
            draw(st.sampled_from([*hosts, None])) if draw(st.integers(0, 15)) == 0 else draw(st.sampled_from(hosts)),
            request_mips=draw(
                st.one_of(st.sampled_from([0.0, 100.0, 200.0, 250.0, 400.0, 500.0, 800.0]), st.floats(0, 2500))
            ),
            capacity_mips=draw(st.sampled_from([500.0, 1000.0, 2500.0])),
            ram_bytes=draw(st.sampled_from([0.0, 0.5e9, 1e9, 1.7e9])),
            in_migration=draw(st.integers(0, 9)) == 0,
            allowed_ivns=draw(st.sampled_from([None, ("ivn-a",), ("ivn-a", "ivn-c"), IVNS])),
        )
    fleet = builder.build()
    instance_pes = draw(st.sampled_from([None, "drawn"]))
    host_pes = draw(st.sampled_from([None, "drawn"]))
    return dataclasses.replace(
        fleet,
        instance_pes=None
        if instance_pes is None
        else np.array([draw(st.sampled_from([1, 1, 2, 4])) for _ in range(n_inst)], dtype=np.int64),
        host_pes=None
        if host_pes is None
        else np.array([draw(st.sampled_from([1, 2, 4, 8])) for _ in range(n_hosts)], dtype=np.int64),
    )


@settings(max_examples=600, deadline=None)
@given(
    fleet=fleets(),
    threshold=st.sampled_from([0.5, 0.7, 0.8, 1.0]),
    underload=st.sampled_from([None, 0.2, 0.5, 1.0]),
    rule=st.sampled_from(sorted(TARGET_SELECTIONS)),
    selection=st.sampled_from(sorted(INSTANCE_SELECTIONS)),
    cross_ivn=st.booleans(),
)
def test_kernel_plans_equal_the_numpy_reference(
    fleet: FleetSnapshot, threshold: float, underload: float | None, rule: str, selection: str, cross_ivn: bool
) -> None:
    params = {
        "threshold": threshold,
        "target_selection": rule,
        "instance_selection": selection,
        "underload_threshold": underload,
        "allow_cross_ivn": cross_ivn,
    }
    assert ThresholdPolicy(**params).decide(fleet) == ReferenceThresholdPolicy(**params).decide(fleet)
