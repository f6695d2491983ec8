"""accounting = "cloudsim": CloudSim 3.0.3's timeline, energy, SLA and migration bookkeeping by hand.

Tiny scenarios built in code: G4 hosts (2 PEs of 1860 MIPS, 4096 MB, 1 Gbit/s), VMs of 1860 MIPS
on hand-written 5-minute cpu traces, 30 minutes, so decisions fall at 300.1, 600.1, ..., 1500.1
(reference cloudsim-planetlab.md §1.3-1.11).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.consolidation_policy import CONSOLIDATION_POLICIES
from policies.fleet import FleetSnapshot
from policies.records import MigrationPlan, Move
from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario, validate_scenario
from scenarios.traces.trace_set import TraceSet
from sim.cloudsim_accounting import run_cloudsim_accounting
from sim.results import RunResult
from sim.runner import run_scenario

G4 = [86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0]
TOTAL = 3720.0
STEP = 300.0
DURATION = 1800.0
DECISIONS = [300.1 + 300.0 * k for k in range(5)]


def _p(u: float) -> float:
    return float(np.interp(u, np.linspace(0.0, 1.0, 11), G4))


def _scenario(n_hosts: int = 2, **top: Any) -> Scenario:
    raw: dict[str, Any] = {
        "name": "tiny-cloudsim",
        "duration_s": DURATION,
        "step_s": STEP,
        "accounting": "cloudsim",
        "topology": {
            "host_types": [
                {"name": "G4", "pes": 2, "pe_mips": 1860.0, "ram_mb": 4096.0, "nic_bandwidth_bps": 1e9, "power_w": G4}
            ],
            "ivns": [{"name": "dc", "hosts": [{"type": "G4", "count": n_hosts}]}],
        },
        "workload": {
            "trace": "planetlab",
            "instance_types": [{"name": "vm", "mips": 1860.0, "ram_mb": 1250.0}],
        },
    }
    raw.update(top)
    return validate_scenario(raw, source="<test>")


def _population(cpu: Sequence[Sequence[float]], ram_mb: Sequence[float] | None = None) -> InstancePopulation:
    util = np.asarray(cpu, dtype=np.float32)
    n = util.shape[0]
    ram = np.asarray(ram_mb if ram_mb is not None else [1250.0] * n, dtype=np.float64) * MB
    return InstancePopulation(
        instance_ids=tuple(f"vm-{i:05d}" for i in range(n)),
        trace_ids=tuple(f"s{i}" for i in range(n)),
        type_names=("vm",) * n,
        mips=np.full(n, 1860.0),
        ram_bytes=ram,
        state_bytes=ram.copy(),
        ivn_index=np.zeros(n, dtype=np.int64),
        demand=TraceSet(
            name="planetlab/tiny", instance_ids=tuple(f"s{i}" for i in range(n)), step_s=STEP, cpu_util=util
        ),
    )


class _Idle:
    """A policy that never moves anything."""

    name = "idle"

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        return MigrationPlan.empty()


class _Scripted:
    """Move instance -> host at the decision point with the given index (0 = 300.1 s)."""

    name = "scripted"

    def __init__(self, moves: dict[int, list[tuple[str, str]]]) -> None:
        self.moves = moves
        self.calls = 0
        self.seen: list[FleetSnapshot] = []

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        self.seen.append(fleet)
        todo = self.moves.get(self.calls, [])
        self.calls += 1
        return MigrationPlan(moves=tuple(Move(i, "dc", h) for i, h in todo))


def _run(scenario: Scenario, population: InstancePopulation, policy: Any, seed: int = 0) -> RunResult:
    return run_cloudsim_accounting(scenario, population, policy, rng=np.random.default_rng(seed))


def _host_util(cpu: np.ndarray, t: float) -> float:
    """One VM per host: its utilisation at t (linear inside the grid) * 1860 / 3720."""
    grid = np.arange(cpu.shape[0] + 1) * STEP
    values = np.append(cpu, cpu[-1])
    return float(np.interp(t, grid, values)) * 1860.0 / TOTAL


# --- timeline and energy ---------------------------------------------------------------------------


TRACES = [[0.2, 0.4, 0.6, 0.4, 0.2, 0.1], [0.3, 0.3, 0.5, 0.7, 0.9, 0.9]]


def test_frames_fall_on_the_decision_points_and_follow_the_trapezoid() -> None:
    result = _run(_scenario(), _population(TRACES), _Idle())
    frames = result.extra["energy_frames"]
    np.testing.assert_allclose(frames["time_s"], DECISIONS, rtol=0, atol=1e-9)
    assert frames["energy_j"].iloc[0] == 0.0  # every host was at 0 before the first update: off
    cpu = np.asarray(TRACES)
    # power-aware best fit at P(0) for all: VM 0 on host 0, VM 1 on host 1 (spreads)
    assert list(result.instances["initial_host"]) == ["dc/h00000", "dc/h00001"]
    for k in range(1, len(DECISIONS)):
        t0, t1 = DECISIONS[k - 1], DECISIONS[k]
        expected = 0.0
        for h in range(2):
            p0, p1 = _p(_host_util(cpu[h], t0)), _p(_host_util(cpu[h], t1))
            expected += (p0 + (p1 - p0) / 2) * (t1 - t0)
        assert frames["energy_j"].iloc[k] == pytest.approx(expected, rel=1e-9), k


def test_energy_frames_increase_in_time_and_sum_to_the_summary() -> None:
    result = _run(_scenario(), _population(TRACES), _Idle())
    frames = result.extra["energy_frames"]
    assert np.all(np.diff(frames["time_s"].to_numpy()) > 0)
    assert frames["energy_j"].sum() / 3.6e6 == pytest.approx(result.summary["energy_kwh"], rel=1e-12)
    assert result.timeseries["energy_j"].sum() == pytest.approx(frames["energy_j"].sum(), rel=1e-12)
    assert result.summary["last_event_s"] == pytest.approx(1500.1)
    assert result.summary["steps"] == 5


def test_npa_is_every_host_at_full_power_until_the_last_event() -> None:
    for placement in ("first_fit", "power_aware_best_fit"):
        scenario = _scenario(n_hosts=3, power_aware=False, initial_placement=placement)
        result = _run(scenario, _population(TRACES), _Idle())
        assert result.summary["energy_kwh"] * 3.6e6 == pytest.approx(3 * 117.0 * 1500.1, rel=1e-12)
        frames = result.extra["energy_frames"]
        assert frames["energy_j"].iloc[0] == pytest.approx(3 * 117.0 * 300.1, rel=1e-12)


def test_first_fit_packs_and_best_fit_spreads() -> None:
    packed = _run(_scenario(n_hosts=3, initial_placement="first_fit"), _population(TRACES), _Idle())
    spread = _run(_scenario(n_hosts=3), _population(TRACES), _Idle())
    assert list(packed.instances["initial_host"]) == ["dc/h00000", "dc/h00000"]
    assert list(spread.instances["initial_host"]) == ["dc/h00000", "dc/h00001"]


def test_run_scenario_routes_cloudsim_accounting_here() -> None:
    scenario, population = _scenario(), _population(TRACES)
    via_runner = run_scenario(scenario, population, _Idle(), rng=np.random.default_rng(0))
    assert via_runner.summary["accounting"] == "cloudsim"
    assert via_runner.summary["energy_kwh"] == _run(scenario, population, _Idle()).summary["energy_kwh"]


def test_the_policy_sees_last_utilisation_and_list_rank() -> None:
    policy = _Scripted({})
    _run(_scenario(), _population(TRACES), policy)
    assert len(policy.seen) == 5
    first = policy.seen[0]
    assert first.now_s == pytest.approx(300.1)
    assert first.host_cpu_util_last is not None and first.instance_list_rank is not None
    cpu = np.asarray(TRACES)
    np.testing.assert_allclose(first.host_cpu_util_last, [_host_util(cpu[h], 300.1) for h in range(2)], rtol=1e-12)
    # the request is u(t) * MIPS, t inside the 5-minute grid
    np.testing.assert_allclose(
        first.instance_cpu_request_mips, [_host_util(cpu[v], 300.1) * TOTAL for v in range(2)], rtol=1e-12
    )


# --- migrations, SLATAH, PDM -----------------------------------------------------------------------


def test_a_migration_lasts_ram_over_62_5_and_books_slatah_and_pdm() -> None:
    # constant demand: VM 0 at 0.5 (930 MIPS) on host 0, VM 1 at 0.4 (744 MIPS, 1250 MB) on host 1;
    # at 300.1 VM 1 moves to host 0, taking 1250 / 62.5 = 20 s.
    cpu = [[0.5] * 6, [0.4] * 6]
    policy = _Scripted({0: [("vm-00001", "dc/h00000")]})
    result = _run(_scenario(), _population(cpu, ram_mb=[1000.0, 1250.0]), policy)
    mig = result.migrations
    assert len(mig) == 1
    row = mig.iloc[0]
    assert (row["instance_id"], row["source_host"], row["target_host"]) == ("vm-00001", "dc/h00001", "dc/h00000")
    assert row["start_s"] == pytest.approx(300.1)
    assert row["end_s"] - row["start_s"] == pytest.approx(1250.0 / 62.5, rel=1e-12)
    assert list(result.instances["final_host"]) == ["dc/h00000", "dc/h00000"]
    # completion at 320.1 is an update: a frame ends there
    frames = result.extra["energy_frames"]["time_s"].to_numpy()
    assert np.any(np.isclose(frames, 320.1))
    # SLATAH: [300.1, 320.1] two hosts active, the target violating (it gets 10 % of VM 1's request);
    # [320.1, 1500.1] host 0 alone, not violating.
    assert result.summary["slatah"] == pytest.approx(20.0 / (2 * 20.0 + 1180.0), rel=1e-9)
    # PDM: VM 1 gets 90 % of 744 MIPS for 20 s, over the MIPS requested from 300.1 to 1500.1
    assert result.summary["pdm"] == pytest.approx(0.1 * 744.0 * 20.0 / ((930.0 + 744.0) * 1200.0), rel=1e-9)
    assert result.summary["slav"] == pytest.approx(result.summary["slatah"] * result.summary["pdm"], rel=1e-12)


def test_no_migration_no_sla_violation() -> None:
    result = _run(_scenario(), _population([[0.5] * 6, [0.4] * 6]), _Idle())
    assert result.summary["slatah"] == 0.0 and result.summary["pdm"] == 0.0
    assert result.migrations.empty


@pytest.mark.parametrize("ram_mb", [613.0, 870.0, 1740.0])
def test_migration_duration_is_ram_over_62_5(ram_mb: float) -> None:
    policy = _Scripted({1: [("vm-00000", "dc/h00001")]})
    result = _run(_scenario(), _population([[0.5] * 6, [0.4] * 6], ram_mb=[ram_mb, 1000.0]), policy)
    row = result.migrations.iloc[0]
    assert row["start_s"] == pytest.approx(600.1)
    assert row["end_s"] - row["start_s"] == pytest.approx(ram_mb / 62.5, rel=1e-12)
    assert result.instances["migrations"].tolist() == [1, 0]


def test_a_move_to_the_current_host_is_ignored() -> None:
    policy = _Scripted({0: [("vm-00000", "dc/h00000")]})
    result = _run(_scenario(), _population([[0.5] * 6, [0.4] * 6]), policy)
    assert result.migrations.empty


# --- removal of "completed" VMs --------------------------------------------------------------------


def test_a_vm_at_zero_on_two_consecutive_samples_leaves_the_datacenter() -> None:
    # VM 0 reads 0 at 300 s and 600 s: u(300.1) = 0, so it is removed at the first update.
    # VM 1 reads 0 only at 600 s: u(600.1) = 0.3 / 3000 > 0, so it stays.
    cpu = [[0.3, 0.0, 0.0, 0.3, 0.3, 0.3], [0.3, 0.3, 0.0, 0.3, 0.3, 0.3], [0.5] * 6]
    result = _run(_scenario(n_hosts=3), _population(cpu), _Idle())
    assert list(result.instances["final_host"]) == ["", "dc/h00001", "dc/h00002"]
    assert list(result.instances["initial_host"]) == ["dc/h00000", "dc/h00001", "dc/h00002"]
    # host 0 never counts again: its energy stops once its last utilisation (0) is the previous one
    frames = result.extra["energy_frames"]
    t0, t1 = DECISIONS[1], DECISIONS[2]
    cpu_a = np.asarray(cpu)
    expected = sum(
        (p0 + (p1 - p0) / 2) * (t1 - t0)
        for p0, p1 in ((_p(_host_util(cpu_a[h], t0)), _p(_host_util(cpu_a[h], t1))) for h in (1, 2))
    )
    assert frames["energy_j"].iloc[2] == pytest.approx(expected, rel=1e-9)


def test_a_removed_vm_is_not_offered_to_the_policy_as_placed() -> None:
    cpu = [[0.3, 0.0, 0.0, 0.3, 0.3, 0.3], [0.5] * 6]
    policy = _Scripted({})
    _run(_scenario(), _population(cpu), policy)
    assert policy.seen[0].instance_host.tolist() == [-1, 1]


# --- determinism and laws --------------------------------------------------------------------------


def _consolidating() -> Any:
    return CONSOLIDATION_POLICIES["thr-mmt"](safety=0.8, cloudsim_quirks=True)


def test_the_same_seed_gives_identical_frames() -> None:
    rng = np.random.default_rng(21)
    cpu = np.round(rng.uniform(0.05, 0.95, size=(6, 6)), 2)
    scenario, population = _scenario(n_hosts=4), _population(cpu)
    a = _run(scenario, population, _consolidating(), seed=3)
    b = _run(scenario, population, _consolidating(), seed=3)
    assert a.extra["energy_frames"].equals(b.extra["energy_frames"])
    assert a.migrations.equals(b.migrations)
    timing = {"wall_s", "instance_steps_per_s"}  # wall-clock figures, the only ones allowed to differ
    assert {k: v for k, v in a.summary.items() if k not in timing} == {
        k: v for k, v in b.summary.items() if k not in timing
    }


def test_the_cloudsim_round_consolidates_the_tiny_fleet() -> None:
    # four light VMs spread over four hosts: the under-load step packs them, every move RAM / 62.5
    cpu = [[0.1] * 6, [0.15] * 6, [0.2] * 6, [0.25] * 6]
    result = _run(_scenario(n_hosts=4), _population(cpu, ram_mb=[613.0, 870.0, 1250.0, 1740.0]), _consolidating())
    assert len(result.migrations) > 0
    assert result.timeseries["active_hosts"].iloc[-1] < 4
    ram = dict(zip([f"vm-{i:05d}" for i in range(4)], [613.0, 870.0, 1250.0, 1740.0], strict=True))
    durations = result.migrations["end_s"] - result.migrations["start_s"]
    np.testing.assert_allclose(durations, [ram[i] / 62.5 for i in result.migrations["instance_id"]], rtol=1e-12)


@st.composite
def _fleets(draw: st.DrawFn) -> tuple[list[list[int]], list[float], int]:
    """2-5 VMs with whole-percentage traces (0 included: such a VM may leave), RAM sizes, 2-4 hosts."""
    n = draw(st.integers(min_value=2, max_value=5))
    percent = draw(
        st.lists(st.lists(st.integers(min_value=0, max_value=100), min_size=6, max_size=6), min_size=n, max_size=n)
    )
    ram = draw(st.lists(st.sampled_from([613.0, 870.0, 1250.0, 1740.0]), min_size=n, max_size=n))
    n_hosts = draw(st.integers(min_value=(n + 1) // 2, max_value=4))  # two 1860 MIPS VMs per host fit
    return percent, ram, n_hosts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=_fleets())
def test_accounting_laws_on_random_small_traces(fleet: tuple[list[list[int]], list[float], int]) -> None:
    percent, ram, n_hosts = fleet
    cpu = np.asarray(percent, dtype=np.float64) / 100.0
    population = _population(cpu, ram_mb=ram)
    aware = _run(_scenario(n_hosts=n_hosts), population, _consolidating())
    npa = _run(_scenario(n_hosts=n_hosts, power_aware=False), population, _consolidating())
    frames = aware.extra["energy_frames"]
    times = frames["time_s"].to_numpy()
    assert np.all(np.diff(times) > 0)
    assert np.all(frames["energy_j"].to_numpy() >= 0.0)
    assert frames["energy_j"].iloc[0] == 0.0
    assert aware.summary["energy_kwh"] <= npa.summary["energy_kwh"] * (1 + 1e-12)
    np.testing.assert_array_equal(times, npa.extra["energy_frames"]["time_s"].to_numpy())
    assert npa.summary["energy_kwh"] * 3.6e6 == pytest.approx(n_hosts * 117.0 * times[-1], rel=1e-12)
    by_id = dict(zip(population.instance_ids, ram, strict=True))
    durations = (aware.migrations["end_s"] - aware.migrations["start_s"]).to_numpy(dtype=np.float64)
    expected = np.array([by_id[i] / 62.5 for i in aware.migrations["instance_id"]], dtype=np.float64)
    np.testing.assert_allclose(durations, expected, rtol=1e-12)
    assert 0.0 <= aware.summary["slatah"] <= 1.0 and 0.0 <= aware.summary["pdm"] <= 1.0


def test_features_cloudsim_does_not_have_are_refused_in_one_line(traces_root) -> None:
    from mirrortwin.config import load_settings
    from mirrortwin.wiring import run_named
    from sim.world import SimulationError

    for feature in ("failures", "requests"):
        overrides = {"accounting": "cloudsim", f"{feature}.enabled": True, "duration_s": 3600.0}
        with pytest.raises(SimulationError) as info:
            run_named("planetlab-20110303", policy="null", overrides=overrides, settings=load_settings())
        message = str(info.value)
        assert f"{feature}.enabled = false" in message and "\n" not in message
