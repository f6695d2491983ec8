"""The compiled placement kernels: the multi-PE fit rule, and one cached signature per kernel."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest

from policies import placement_kernels
from policies.fleet import FleetSnapshot
from policies.threshold_policy import ThresholdPolicy
from tests.fakes.fleet_builder import FleetBuilder


def pe_fleet(instance_pes: list[int] | None, host_pes: list[int] | None) -> FleetSnapshot:
    """h0 at 90 %: MMT sheds i1 (400 MIPS); three hosts have MIPS and memory for it.

    ==========  =======  ===  =====================================================
    host        PE MIPS  PEs  takes i1 as 2 PEs (200 each)?   as 1 PE (400)?
    ==========  =======  ===  =====================================================
    one-pe      1000     1    no: needs 2 PEs                  yes
    slow-pes    150      4    no: 200 > 150                    no
    two-pes     250      2    yes                              no: 400 > 250
    ==========  =======  ===  =====================================================
    """
    fleet = (
        FleetBuilder()
        .host("h0")
        .instance("i0", "h0", request_mips=500, ram_bytes=2e9)
        .instance("i1", "h0", request_mips=400, ram_bytes=1e9)
        .host("one-pe", pe_mips=1000)
        .host("slow-pes", pe_mips=150)
        .host("two-pes", pe_mips=250)
        .build()
    )
    return dataclasses.replace(
        fleet,
        instance_pes=None if instance_pes is None else np.array(instance_pes, dtype=np.int64),
        host_pes=None if host_pes is None else np.array(host_pes, dtype=np.int64),
    )


@pytest.mark.parametrize(
    ("instance_pes", "host_pes", "expected"),
    [
        ([1, 2], [2, 1, 4, 2], "two-pes"),  # per-PE share 200 and 2 PEs needed
        ([1, 2], None, "one-pe"),  # PE count unlimited: its fast PE takes the 200-MIPS share
        (None, [2, 1, 4, 2], "one-pe"),  # one PE each: it needs a 400-MIPS PE
        ([1, 1], [2, 1, 4, 2], "one-pe"),
    ],
)
def test_multi_pe_instances_need_their_share_per_pe_and_enough_host_pes(
    instance_pes: list[int] | None, host_pes: list[int] | None, expected: str
) -> None:
    plan = ThresholdPolicy(threshold=0.8, target_selection="first_fit").decide(pe_fleet(instance_pes, host_pes))
    assert {m.instance_id: m.target_host for m in plan.moves} == {"i1": expected}


def test_multi_pe_instance_fits_nowhere_without_enough_pes() -> None:
    fleet = pe_fleet([1, 8], [2, 1, 4, 2])
    assert ThresholdPolicy(threshold=0.8).decide(fleet).moves == ()


def test_multi_pe_rule_applies_to_underload_evacuation() -> None:
    """ "light" (2-PE instance, 300 MIPS) can only go to "two-pes"; "one-pe" has the power edge."""
    fleet = (
        FleetBuilder()
        .host("one-pe", pe_mips=1000)
        .instance("a", "one-pe", request_mips=400)
        .host("two-pes", pe_mips=500)
        .instance("b", "two-pes", request_mips=500)
        .host("light")
        .instance("l", "light", request_mips=300)
        .build()
    )
    fleet = dataclasses.replace(fleet, instance_pes=np.array([1, 1, 2]), host_pes=np.array([1, 2, 2]))
    plan = ThresholdPolicy(threshold=0.8, underload_threshold=0.35).decide(fleet)
    assert {m.instance_id: m.target_host for m in plan.moves} == {"l": "two-pes"}


def test_every_kernel_keeps_a_single_compiled_signature() -> None:
    """Read-only, int32 and Fortran-ordered inputs are normalised before they reach numba."""
    base = pe_fleet([1, 2], [2, 1, 4, 2])
    readonly = {name: np.array(getattr(base, name)) for name in ("host_cpu_capacity_mips", "instance_host")}
    for array in readonly.values():
        array.flags.writeable = False
    variants = [
        base,
        dataclasses.replace(base, instance_pes=None, host_pes=None),
        dataclasses.replace(base, **readonly),
        dataclasses.replace(
            base,
            instance_host=base.instance_host.astype(np.int32),
            host_power_w=np.asfortranarray(base.host_power_w),
            instance_pes=base.instance_pes.astype(np.int32) if base.instance_pes is not None else None,
        ),
    ]
    for fleet in variants:
        for rule in ("first_fit", "least_loaded", "power_aware_best_fit"):
            ThresholdPolicy(target_selection=rule, underload_threshold=1.0).decide(fleet)
    kernels = [
        value for value in vars(placement_kernels).values() if isinstance(value, numba.core.dispatcher.Dispatcher)
    ]
    assert len(kernels) >= 8
    # Literal-valued arguments would also multiply specialisations; the kernels pass numpy scalars.
    assert {kernel.__name__: len(kernel.signatures) for kernel in kernels if kernel.signatures} == {
        kernel.__name__: 1 for kernel in kernels if kernel.signatures
    }
