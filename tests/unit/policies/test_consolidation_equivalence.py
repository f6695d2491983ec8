"""ConsolidationPolicy's narrowed placement checks give the plans of the all-hosts oracle, ties included.

The oracle (:mod:`tests.unit.policies.consolidation_reference`) asks the detector about every host
for every placement; the policy asks only about the hosts the target rule would pick. Fleets here
carry random histories (short, long, with zeros) so the statistical detectors leave their
THR fallback, and small capacities so the after-allocation test rejects targets often.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.consolidation_policy import CONSOLIDATION_POLICIES, ConsolidationPolicy
from policies.fleet import FleetSnapshot
from policies.overload_detectors import HISTORY_LENGTH
from policies.target_selection import TARGET_SELECTIONS
from policies.vm_selection import RandomSelection
from tests.fakes.fleet_builder import FleetBuilder
from tests.unit.policies.consolidation_reference import ReferenceConsolidationPolicy
from tests.unit.policies.test_kernel_equivalence import POWER_TABLES

IVNS = ("ivn-a", "ivn-b")


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    n_ivns = draw(st.integers(1, 2))
    builder = FleetBuilder(ivns=IVNS[:n_ivns])
    n_hosts = draw(st.integers(1, 12))
    for h in range(n_hosts):
        capacity = draw(st.sampled_from([1000.0, 2000.0, 3720.0]))
        builder.host(
            f"h{h}",
            capacity_mips=capacity,
            pe_mips=draw(st.sampled_from([capacity, capacity / 2])),
            ram_bytes=draw(st.sampled_from([4e9, 16e9])),
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
            request_mips=draw(st.one_of(st.sampled_from([0.0, 100.0, 250.0, 400.0, 800.0]), st.floats(0, 1500))),
            capacity_mips=draw(st.sampled_from([500.0, 1000.0, 2500.0])),
            ram_bytes=draw(st.sampled_from([0.0, 0.5e9, 1e9, 1.7e9, 40e9])),
            in_migration=draw(st.integers(0, 9)) == 0,
        )
    fleet = builder.build()
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_hist = draw(st.sampled_from([HISTORY_LENGTH, HISTORY_LENGTH + 5, 12]))
    history = rng.choice([0.0, 0.1, 0.25, 0.5, 0.9], size=(n_inst, n_hist))
    history = np.where(rng.random((n_inst, n_hist)) < 0.5, history, rng.random((n_inst, n_hist)))
    observed_from = rng.integers(0, n_hist + 1, size=n_inst)
    history[np.arange(n_hist)[None, :] < observed_from[:, None]] = np.nan
    return dataclasses.replace(fleet, instance_cpu_history=history)


@settings(max_examples=400, deadline=None)
@given(
    fleet=fleets(),
    name=st.sampled_from(sorted(CONSOLIDATION_POLICIES)),
    safety=st.sampled_from([None, 0.5, 1.0, 3.0]),
    rule=st.sampled_from(sorted(TARGET_SELECTIONS)),
    underload=st.booleans(),
)
def test_plans_equal_the_all_hosts_oracle(
    fleet: FleetSnapshot, name: str, safety: float | None, rule: str, underload: bool
) -> None:
    kwargs: dict[str, object] = {} if safety is None else {"safety": safety}
    if name.endswith("-rs"):  # two generators with one seed: the same draws if the same decisions
        kwargs["rng"] = np.random.default_rng(7)
    policy: ConsolidationPolicy = CONSOLIDATION_POLICIES[name](target_selection=rule, underload=underload, **kwargs)
    selection = RandomSelection(np.random.default_rng(7)) if name.endswith("-rs") else policy.selection
    oracle = ReferenceConsolidationPolicy(policy.detector, selection, rule, underload)
    assert policy.decide(fleet) == oracle.decide(fleet)
