"""CloudSim 3.0.3 VM-selection rules on hand-made hosts (reference cloudsim-planetlab.md §1.10)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies import instance_selection
from policies.fleet import FleetSnapshot
from policies.vm_selection import (
    VM_SELECTIONS,
    MaximumCorrelation,
    MinimumMigrationTime,
    MinimumUtilization,
    RandomSelection,
    VmSelection,
    r_squared,
)
from tests.fakes.fleet_builder import FleetBuilder


def host_with(rams: list[float], requests: list[float], history: list[list[float]] | None = None) -> FleetSnapshot:
    builder = FleetBuilder().host("h0", capacity_mips=10_000.0)
    for k, (ram, request) in enumerate(zip(rams, requests, strict=True)):
        builder.instance(f"vm{k}", "h0", request_mips=request, capacity_mips=1000.0, ram_bytes=ram)
    fleet = builder.build()
    if history is not None:
        fleet = dataclasses.replace(fleet, instance_cpu_history=np.array(history, dtype=np.float64))
    return fleet


ALL = np.arange(4)


def test_mmt_picks_least_memory_and_the_first_on_ties() -> None:
    fleet = host_with([1740e6, 613e6, 870e6, 613e6], [100.0] * 4)
    assert MinimumMigrationTime().pick(fleet, ALL) == 1
    assert MinimumMigrationTime().pick(fleet, np.array([3, 1, 2])) == 3  # first in the host's list order


def test_mu_picks_least_utilised() -> None:
    fleet = host_with([1e9] * 4, [500.0, 200.0, 200.0, 900.0])
    assert MinimumUtilization().pick(fleet, ALL) == 1


def test_mmt_and_mu_still_serve_the_sort_key_interface() -> None:
    fleet = host_with([1740e6, 613e6, 870e6, 613e6], [500.0, 200.0, 300.0, 900.0])
    assert isinstance(MinimumMigrationTime(), instance_selection.MinimumMigrationTime)
    assert MinimumMigrationTime().sort_key(fleet, ALL).tolist() == [1740e6, 613e6, 870e6, 613e6]
    assert MinimumUtilization().sort_key(fleet, ALL).tolist() == [0.5, 0.2, 0.3, 0.9]


NOISE = [0.5, 0.1, 0.7, 0.2, 0.6, 0.1, 0.4, 0.8]
X1 = [0.2, 0.3, 0.5, 0.1, 0.4, 0.2, 0.6, 0.3]
X2 = [0.3, 0.3, 0.4, 0.2, 0.2, 0.4, 0.5, 0.1]
JITTER = [0.01, -0.01, 0.0, 0.01, -0.01, 0.0, 0.01, -0.01]
SUM = [a + b + e for a, b, e in zip(X1, X2, JITTER, strict=True)]


def test_mc_picks_the_vm_best_explained_by_the_others() -> None:
    # SUM = X1 + X2 + small jitter. One relation ties the three, so each is nearly explained by the
    # others, but the same jitter weighs least against SUM's spread (X1 and X2 move together).
    scores = r_squared(np.array([NOISE, X1, SUM, X2]))
    assert scores is not None
    assert scores.round(4).tolist() == [0.6552, 0.9982, 0.9994, 0.9978]
    fleet = host_with([613e6] * 4, [100.0] * 4, [NOISE, X1, SUM, X2])
    assert MaximumCorrelation().pick(fleet, ALL) == 2


def test_mc_regresses_over_the_shortest_common_history() -> None:
    # VM 0 has only the 8 newest samples; older samples of the others must not matter.
    nan = float("nan")
    newest = [NOISE, X1, SUM, X2]
    history = [[nan, nan, *NOISE], [9.0, 0.0, *X1], [0.0, 5.0, *SUM], [3.0, 3.0, *X2]]
    fleet = host_with([1e9] * 4, [100.0] * 4, history)
    assert MaximumCorrelation().pick(fleet, ALL) == 2
    assert MaximumCorrelation().pick(host_with([1e9] * 4, [100.0] * 4, newest), ALL) == 2


def test_mc_falls_back_to_mmt_with_fewer_samples_than_coefficients() -> None:
    fleet = host_with([1740e6, 870e6, 613e6], [100.0] * 3, [[0.1, 0.5], [0.2, 0.3], [0.7, 0.1]])
    assert r_squared(fleet.instance_cpu_history) is None  # 2 rows < 3 coefficients
    assert MaximumCorrelation().pick(fleet, np.arange(3)) == 2


def test_mc_falls_back_on_a_singular_design() -> None:
    history = [[0.1, 0.5, 0.2, 0.7], [0.3, 0.3, 0.3, 0.3], [0.6, 0.2, 0.4, 0.1]]  # VM 1 is the intercept
    fleet = host_with([1740e6, 870e6, 613e6], [100.0] * 3, history)
    assert r_squared(fleet.instance_cpu_history) is None
    assert MaximumCorrelation().pick(fleet, np.arange(3)) == 2
    assert MaximumCorrelation(fallback=MinimumUtilization()).pick(fleet, np.arange(3)) == 0


def test_mc_with_one_candidate_returns_it() -> None:
    fleet = host_with([1e9] * 4, [100.0] * 4, [NOISE, X1, SUM, X2])
    assert MaximumCorrelation().pick(fleet, np.array([3])) == 3


def test_random_selection_repeats_with_the_seed_and_stays_among_candidates() -> None:
    fleet = host_with([1e9] * 4, [100.0] * 4)
    candidates = np.array([0, 2, 3])
    rule_a, rule_b = RandomSelection(np.random.default_rng(5)), RandomSelection(np.random.default_rng(5))
    picks_a = [rule_a.pick(fleet, candidates) for _ in range(50)]
    picks_b = [rule_b.pick(fleet, candidates) for _ in range(50)]
    assert picks_a == picks_b
    assert set(picks_a) == {0, 2, 3}


@pytest.mark.parametrize("name", sorted(VM_SELECTIONS))
def test_every_named_rule_picks_a_candidate(name: str) -> None:
    rule: VmSelection = VM_SELECTIONS[name](np.random.default_rng(0))
    fleet = host_with([1740e6, 613e6, 870e6, 613e6], [500.0, 200.0, 300.0, 900.0], [NOISE, X1, SUM, X2])
    assert rule.name == name
    assert rule.pick(fleet, np.array([1, 3])) in {1, 3}
