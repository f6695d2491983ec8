"""Host failures: lifetime laws, rising health metrics, failover downtime and data lost, byte law."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from mirrortwin.config import load_settings
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from scenarios.spec import MB, FailureSettings
from sim.failures import FailureDistributions
from sim.migration_physics import unique_dirty_bytes
from sim.network import SharedNetwork
from sim.runner import run_scenario
from sim.world import SimulationError, SimWorld, build_world

INSTANCE = "vm-00000"
FAIL_AT_S = 3700.0  # 100 s after the 3600 s snapshot, which has reached the store by then


@pytest.mark.parametrize("model", ["exponential", "weibull"])
@pytest.mark.parametrize("shape", [0.7, 1.5, 3.0])
def test_lifetimes_have_mean_mtbf(model: str, shape: float) -> None:
    dist = FailureDistributions(FailureSettings(model=model, mtbf_s=10_000.0, weibull_shape=shape))
    draws = dist.lifetimes(np.random.default_rng(7), 200_000)
    se = draws.std() / np.sqrt(draws.size)
    assert abs(draws.mean() - 10_000.0) < 4 * se
    assert (draws > 0).all()


def _world(overrides: dict[str, Any]) -> tuple[SimWorld, Any]:
    spec = resolve_for_policy("smoke", policy="null", overrides={"controller.params": {}, **overrides})
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    return build_world(spec, population, rng=run_rng), population


@pytest.fixture(scope="module")
def victim_host(traces_root) -> str:
    """The host the instance under test starts on (placement is deterministic)."""
    world, _ = _world({})
    return world.dc.host_ids[world.dc.host_of[world.dc.instance_index[INSTANCE]]]


def _scripted(victim_host: str, **extra: Any) -> dict[str, Any]:
    return {
        "failures.enabled": True,
        "failures.model": "list",
        "failures.times": [{"host": victim_host, "at_s": FAIL_AT_S}],
        **extra,
    }


def _fail_with_constant_demand(overrides: dict[str, Any]) -> tuple[SimWorld, int, float, float]:
    """Run the world to just before and well after the failure; return (world, i, latest_s, dirty_Bps)."""
    world, _ = _world(overrides)
    dc = world.dc
    i = dc.instance_index[INSTANCE]
    dc.set_demand(12)
    world.env.run(until=FAIL_AT_S - 1.0)
    latest = float(world.mirroring.latest_s[i])
    dirty = world.dc.scenario.rma.dirty_rate_mb_s_at_full_load * MB * min(float(dc.request[i] / dc.mips[i]), 1.0)
    world.env.run(until=FAIL_AT_S + 600.0)
    return world, i, latest, dirty


def test_failover_from_the_mirror_costs_detection_plus_restore(victim_host: str) -> None:
    world, i, latest, dirty = _fail_with_constant_demand(_scripted(victim_host))
    dc, f = world.dc, world.failures
    assert f is not None
    assert latest == 3600.0
    spec = dc.scenario
    restore_s = dc.state_bytes[i] / (spec.topology.ivns[1].mirror_store_restore_bps / 8.0)
    assert dc.instance_downtime_s[i] == pytest.approx(spec.failures.detection_s + restore_s, rel=1e-9)
    working_set = dc.state_bytes[i] * spec.rma.writable_working_set_fraction
    expected = unique_dirty_bytes(working_set, dirty, FAIL_AT_S - latest)
    assert 0 < expected < dc.state_bytes[i]
    assert f.instance_data_lost_bytes[i] == pytest.approx(expected, rel=1e-9)
    assert f.instance_failovers[i] == 1 and not dc.instance_down[i]
    # restored into the IVN holding its mirror, and the failed host is off
    assert dc.ivn_names[dc.host_ivn[dc.host_of[i]]] == "ivn-b"
    h = dc.host_index[victim_host]
    assert not dc.host_available[h] and not dc.host_powered()[h]
    assert f.host_failures == 1


def test_failover_without_mirroring_rebuilds_and_loses_all_state(victim_host: str) -> None:
    world, i, _, _ = _fail_with_constant_demand(_scripted(victim_host, **{"rma.enabled": False}))
    dc, f = world.dc, world.failures
    assert f is not None
    spec = dc.scenario
    assert dc.instance_downtime_s[i] == pytest.approx(spec.failures.detection_s + spec.failures.rebuild_boot_s)
    assert f.instance_data_lost_bytes[i] == dc.state_bytes[i]


def test_transfer_cut_by_a_failure_keeps_delivered_plus_lost(victim_host: str) -> None:
    world, _ = _world(_scripted(victim_host, **{"rma.enabled": False}))
    dc = world.dc
    h, other = dc.host_index[victim_host], dc.host_index["ivn-b/h00000"]
    size = 5e9  # 40 s at 1 Gbit/s: still in flight at the failure
    world.env.run(until=FAIL_AT_S - 10.0)
    t = dc.network.start([h, len(dc.host_ids) + other], size, tag="migration")
    world.env.run(until=FAIL_AT_S + 1.0)
    delivered = dc.network.bytes_delivered["migration"]
    lost = dc.network.bytes_lost["migration"]
    assert not t.done.triggered
    assert delivered == pytest.approx(10.0 * 1e9 / 8.0, rel=1e-9)
    assert delivered + lost == pytest.approx(size, rel=1e-12)


def test_cancel_counts_unsent_bytes_as_lost() -> None:
    env = simpy.Environment()
    net = SharedNetwork(env, [8e8], ["l"])
    t = net.start([0], 1e9, tag="x")
    env.run(until=3.0)
    net.cancel(t)
    env.run(until=20.0)
    assert net.bytes_delivered["x"] == pytest.approx(3e8)
    assert net.bytes_delivered["x"] + net.bytes_lost["x"] == pytest.approx(1e9)
    assert t.remaining_bytes == pytest.approx(7e8)


def test_health_metrics_rise_before_a_failure(victim_host: str) -> None:
    fail_at = 18_000.0
    world, _ = _world(
        {
            "failures.enabled": True,
            "failures.model": "list",
            "failures.times": [{"host": victim_host, "at_s": fail_at}],
            "failures.health_lead_time_s": 3600.0,
        }
    )
    f = world.failures
    assert f is not None
    h = world.dc.host_index[victim_host]
    healthy = np.ones(len(world.dc.host_ids), dtype=bool)
    healthy[h] = False
    window = [f.host_health(t) for t in np.arange(fail_at - 3000.0, fail_at, 300.0)]
    before = [f.host_health(t) for t in np.arange(0.0, fail_at - 3600.0, 300.0)]
    failing = np.array([w[h] for w in window])
    others = np.concatenate([w[healthy] for w in window])
    assert (failing.mean(axis=0) > 5 * others.mean(axis=0)).all()
    # outside the window the failing host looks like the others (within the noise)
    early = np.array([b[h] for b in before]).mean(axis=0)
    assert (early < 2 * others.mean(axis=0)).all()
    # the port reports the instance's host; readings depend on the interval, not on the query
    i = world.dc.instance_index[INSTANCE]
    reading = world.telemetry.health_metrics(INSTANCE)
    assert world.dc.host_of[i] == h
    assert reading == {"memory_errors": f.host_health(0.0)[h, 0], "disk_io_errors": f.host_health(0.0)[h, 1]}
    assert set(world.telemetry.host_health()) == {"memory_errors", "disk_io_errors"}


def test_unknown_failure_host_is_a_one_line_error(traces_root) -> None:
    with pytest.raises(SimulationError) as err:
        _world(_scripted("ivn-a/h99999"))
    msg = str(err.value)
    assert "failures.times[0].host" in msg and "\n" not in msg


def test_failure_time_past_the_run_is_a_one_line_error(victim_host: str) -> None:
    overrides = _scripted(victim_host)
    overrides["failures.times"] = [{"host": victim_host, "at_s": 1e9}]
    with pytest.raises(SimulationError, match=r"failures\.times\[0\]\.at_s"):
        _world(overrides)


def _run(overrides: dict[str, Any]):  # type: ignore[no-untyped-def]
    spec = resolve_for_policy("smoke", policy="null", overrides={"controller.params": {}, **overrides})
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    return run_scenario(spec, population, make_scenario_policy(spec), rng=run_rng)


RANDOM_FAILURES = {"failures.enabled": True, "failures.mtbf_s": 20_000.0, "failures.repair_s": 3600.0}


def test_same_seed_same_failures_and_metrics(traces_root) -> None:
    a, b = _run(RANDOM_FAILURES), _run(RANDOM_FAILURES)
    assert a.summary["host_failures"] > 0
    for key in ("host_failures", "failover_downtime_s", "data_lost_bytes", "instances_failed_over"):
        assert a.summary[key] == b.summary[key]
    assert a.instances.equals(b.instances)
    assert a.timeseries.equals(b.timeseries)


def test_run_figures_are_consistent(traces_root) -> None:
    r = _run(RANDOM_FAILURES)
    s = r.summary
    assert r.timeseries["host_failures"].sum() == s["host_failures"]
    assert r.instances["data_lost_bytes"].sum() == pytest.approx(s["data_lost_bytes"])
    assert (r.timeseries["instances_down"] * 300.0).sum() == pytest.approx(s["failover_downtime_s"])
    assert s["failover_downtime_s"] == pytest.approx(s["downtime_s"])  # no migrations under null
    assert s["instances_failed_over"] == int((r.instances["failovers"] > 0).sum())


def test_failures_disabled_leaves_results_unchanged(traces_root) -> None:
    plain = _run({})
    assert "host_failures" not in plain.summary
    assert "instances_down" not in plain.timeseries
    assert "data_lost_bytes" not in plain.instances


def test_failover_packs_into_running_hosts_or_spreads_to_the_least_loaded(victim_host: str) -> None:
    # Without a mirror the replacements restart in their home IVN, where every host runs. pack: the
    # fullest running host that stays at or under 80 % CPU; spread: the least loaded host.
    chosen = {}
    for placement in ("pack", "spread"):
        world, _ = _world(_scripted(victim_host, **{"rma.enabled": False, "failures.failover_placement": placement}))
        dc = world.dc
        dc.request = dc.mips * np.linspace(0.05, 0.6, len(dc.mips))  # constant, uneven demand
        dc.invalidate()
        world.env.run(until=FAIL_AT_S - 1.0)
        running = dc.host_powered().copy()
        util = dc.host_load_mips() / dc.host_cap
        world.env.run(until=FAIL_AT_S + 3600.0)
        targets = [dc.host_index[r[2]] for r in world.failures.rows]
        assert targets, "the failure moved no instance"
        assert all(running[h] for h in targets)
        chosen[placement] = float(np.mean(util[targets]))
        if placement == "spread":
            assert all(util[h] <= np.sort(util[running & dc.host_available])[len(targets)] for h in targets)
    assert chosen["pack"] > chosen["spread"]


@pytest.mark.parametrize("redirect_before_detection", [True, False])
def test_a_host_dying_mid_shift_fails_over_onto_the_running_replacement(
    victim_host: str, redirect_before_detection: bool
) -> None:
    # The instance's replacement is restored and caught up on another host, and traffic is being
    # shifted to it, when the source host dies. The replacement takes over (at detection, or when the
    # load balancer redirects first): the instance is back in service, never left down for good.
    world, _ = _world(_scripted(victim_host))
    dc, lb = world.dc, world.lb
    i = dc.instance_index[INSTANCE]
    world.env.run(until=FAIL_AT_S - 10.0)
    spare = int(np.flatnonzero(dc.host_available & (np.arange(len(dc.host_ids)) != dc.host_of[i]))[0])
    dc.shadow_host[i] = spare
    dc.busy[i] = True
    dc.invalidate()
    lb.set_weights(INSTANCE, {INSTANCE: 0.5, f"{INSTANCE}@{dc.host_ids[spare]}": 0.5})
    world.env.run(until=FAIL_AT_S + 5.0)
    assert dc.instance_down[i]
    if redirect_before_detection:
        lb.redirect(INSTANCE, f"{INSTANCE}@{dc.host_ids[spare]}")
    world.env.run(until=FAIL_AT_S + 600.0)
    assert not dc.instance_down[i] and dc.host_of[i] == spare
    [row] = [r for r in world.failures.rows if r[0] == INSTANCE]
    assert row[2] == dc.host_ids[spare] and row[3] == "replacement"
    assert row[5] - row[4] == pytest.approx(world.failures.settings.detection_s)


def _smart_sampler():
    from scenarios.smart_health import SmartHealthSampler

    healthy = np.array([[0.0, 0.0, 0.0, 9000.0, 30.0], [0.0, 0.0, 1.0, 20000.0, 35.0]])
    failed = np.array([[800.0, 40.0, 0.0, 15000.0, 38.0], [200.0, 8.0, 3.0, 30000.0, 41.0]])
    names = ("reallocated_sectors", "pending_sectors", "crc_errors", "power_on_hours", "temperature_c")
    return SmartHealthSampler(healthy, failed, names)


def test_smart_health_moves_a_host_from_a_healthy_drive_to_a_failed_one(victim_host: str) -> None:
    sampler = _smart_sampler()
    overrides = _scripted(victim_host, **{"failures.health_model": "smart", "failures.health_lead_time_s": 3000.0})
    spec = resolve_for_policy("smoke", policy="null", overrides={"controller.params": {}, **overrides})
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    world = build_world(spec, population, rng=run_rng, health_sampler=sampler)
    failures = world.failures
    h = world.dc.host_index[victim_host]
    assert failures.health_names == sampler.features
    readings = [failures.host_health(t) for t in (0.0, FAIL_AT_S - 3000.0, FAIL_AT_S - 1500.0, FAIL_AT_S - 1.0)]
    healthy_rows = {tuple(r) for r in sampler.healthy}
    others = np.arange(len(world.dc.host_ids)) != h
    for r in readings:  # every other host reports one real healthy drive's readings, unchanged
        assert all(tuple(row) in healthy_rows for row in r[others])
        np.testing.assert_array_equal(r[others], readings[0][others])
    start, mid, end = readings[1][h], readings[2][h], readings[3][h]
    assert tuple(start) in healthy_rows
    # 100 s before the failure (the last sampling instant) it reads ~97 % of the way to a real failed drive
    [target] = [f for f in sampler.failed if (np.abs(end - f) <= 0.05 * np.abs(f - start) + 1.0).all()]
    gap = [np.abs(r - target) for r in (start, mid, end)]
    assert (gap[2] <= gap[1]).all() and (gap[1] <= gap[0]).all() and (gap[2] < gap[0]).any()
    world.env.run(until=FAIL_AT_S + 1.0)
    assert np.isnan(failures.host_health()[h]).all()
    # the health model does not change when hosts fail (drawn failure times, same seed)
    drawn = {"failures.enabled": True, "failures.mtbf_s": 86_400.0}
    parametric, _ = _world(drawn)
    spec = resolve_for_policy(
        "smoke", policy="null", overrides={"controller.params": {}, **drawn, "failures.health_model": "smart"}
    )
    pop_rng, run_rng = seed_streams(spec.seed)
    smart = build_world(spec, make_population(spec, load_settings(), pop_rng), rng=run_rng, health_sampler=sampler)
    np.testing.assert_array_equal(parametric.failures.next_fail_s, smart.failures.next_fail_s)


def test_smart_health_without_the_data_is_one_clear_error(victim_host: str) -> None:
    with pytest.raises(SimulationError, match="health_model"):
        _world(_scripted(victim_host, **{"failures.health_model": "smart"}))


def test_failover_and_the_fleet_view_keep_to_the_ivns_instances_may_run_in(victim_host: str) -> None:
    # The mirror lives in ivn-b, but the instances may only run in ivn-a: failover stays in ivn-a,
    # and policies see the restriction in the fleet view.
    world, _ = _world(_scripted(victim_host, **{"workload.may_move_to": ["ivn-a"]}))
    dc = world.dc
    fleet = world.telemetry.fleet(3)
    assert fleet.instance_allowed_ivns is not None
    assert fleet.instance_allowed_ivns.shape == (len(dc.instance_ids), 2)
    assert fleet.instance_allowed_ivns[:, 0].all() and not fleet.instance_allowed_ivns[:, 1].any()
    world.env.run(until=FAIL_AT_S + 3600.0)
    rows = world.failures.rows
    assert rows and all(r[2].startswith("ivn-a/") for r in rows)
    unrestricted, _ = _world(_scripted(victim_host))
    unrestricted.env.run(until=FAIL_AT_S + 3600.0)
    assert any(r[2].startswith("ivn-b/") for r in unrestricted.failures.rows)  # the mirror's IVN, else
    assert unrestricted.telemetry.fleet(3).instance_allowed_ivns is None
