"""The fluid request model (sim/requests.py) against hand-computed M/M/1 figures.

Each test builds a tiny datacenter by hand (one IVN of G4 hosts, instances of 1860 MIPS), sets the
state arrays directly, runs the clock and lets :meth:`Datacenter.advance` integrate the segments, so
the figures below follow from the formulas in the module docstring with pencil and paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario, validate_scenario
from scenarios.traces.trace_set import TraceSet
from sim.datacenter import MIGRATION_DEGRADATION, Datacenter
from sim.load_balancer import SimLoadBalancer
from sim.requests import mixture_quantiles, mm1_served_rate

G4 = [86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0]
STEP = 300.0
PEAK = 100.0  # req/s at 100 % CPU
CAPACITY = 125.0  # req/s at full MIPS
TIMEOUT = 2.0
MIPS = 1860.0


def _scenario(n_hosts: int = 3, *, enabled: bool = True, capacity: float = CAPACITY) -> Scenario:
    raw: dict[str, Any] = {
        "name": "tiny-requests",
        "duration_s": 3600.0,
        "step_s": STEP,
        "topology": {
            "host_types": [
                {"name": "G4", "pes": 2, "pe_mips": 1860.0, "ram_mb": 4096.0, "nic_bandwidth_bps": 1e9, "power_w": G4}
            ],
            "ivns": [{"name": "dc", "hosts": [{"type": "G4", "count": n_hosts}]}],
        },
        "workload": {"trace": "planetlab", "instance_types": [{"name": "vm", "mips": MIPS, "ram_mb": 500.0}]},
        "requests": {"enabled": enabled, "peak_rps": PEAK, "capacity_rps": capacity, "timeout_s": TIMEOUT},
        "controller": {"health_detection_delay_s": 5.0},
    }
    return validate_scenario(raw, source="<test>")


def _population(util: Sequence[float]) -> InstancePopulation:
    n = len(util)
    cpu = np.repeat(np.asarray(util, dtype=np.float32)[:, None], 12, axis=1)
    ram = np.full(n, 500.0 * MB)
    return InstancePopulation(
        instance_ids=tuple(f"vm-{i:05d}" for i in range(n)),
        trace_ids=tuple(f"s{i}" for i in range(n)),
        type_names=("vm",) * n,
        mips=np.full(n, MIPS),
        ram_bytes=ram,
        state_bytes=ram.copy(),
        ivn_index=np.zeros(n, dtype=np.int64),
        demand=TraceSet(
            name="planetlab/tiny", instance_ids=tuple(f"s{i}" for i in range(n)), step_s=STEP, cpu_util=cpu
        ),
    )


def _dc(util: Sequence[float], **kw: Any) -> Datacenter:
    dc = Datacenter(simpy.Environment(), _scenario(**kw), _population(util))
    dc.set_demand(0)
    return dc


def _run_to(dc: Datacenter, t: float) -> None:
    dc.env.run(until=t)
    dc.advance()


def test_single_instance_latency_quantiles_are_mm1():
    # λ = 0.5 x 100 = 50/s, μ = 125/s: response time ~ Exp(75/s); the timeout tail exp(-150) is nil.
    dc = _dc([0.5])
    _run_to(dc, 1000.0)
    req = dc.requests
    assert req is not None
    assert req.arrived.sum() == pytest.approx(50.0 * 1000.0)
    assert req.failed.sum() == pytest.approx(0.0, abs=1e-9)
    lat = req.latency_quantiles((0.5, 0.95, 0.99))
    for q, got in lat.items():
        assert got == pytest.approx(-math.log(1.0 - q) / 75.0, rel=0.02)
    # 0.5 -> 9.24 ms, 0.95 -> 39.9 ms, 0.99 -> 61.4 ms
    assert lat[0.95] == pytest.approx(0.03994, rel=0.02)


def test_oversubscribed_host_scales_the_service_rate():
    # five instances at 50 % on one G4 (3720 MIPS): load 4650, share 0.8 -> μ = 100, r = 50 each.
    dc = _dc([0.5] * 5, n_hosts=5)
    dc.host_of[:] = 0
    dc.invalidate()
    _run_to(dc, 100.0)
    req = dc.requests
    assert req is not None
    assert req.latency_quantiles((0.5,))[0.5] == pytest.approx(math.log(2.0) / 50.0, rel=0.02)
    assert req.arrived.sum() == pytest.approx(5 * 50.0 * 100.0)


def test_near_saturation_fails_the_timeout_tail():
    # λ = 100, μ = 101: a share exp(-(101-100) x 2) = 13.5 % of the requests exceed the 2 s timeout.
    dc = _dc([1.0], capacity=101.0)
    _run_to(dc, 100.0)
    req = dc.requests
    assert req is not None
    assert req.failed.sum() == pytest.approx(100.0 * 100.0 * math.exp(-2.0), rel=1e-9)
    assert req.served.sum() == pytest.approx(100.0 * 100.0 * (1.0 - math.exp(-2.0)), rel=1e-9)


def test_overload_drops_the_excess_plus_the_timeout_tail():
    # λ = 100 > μ = 80: 20/s dropped; the admitted 80/s saturate the server (r = 0), so their tail
    # exp(-0 x T) = 1: every admitted request times out (goodput collapse), 100/s fail in all.
    dc = _dc([1.0], capacity=80.0)
    _run_to(dc, 50.0)
    req = dc.requests
    assert req is not None
    dropped, tail = (100.0 - 80.0) * 50.0, 80.0 * math.exp(-0.0 * TIMEOUT) * 50.0
    assert req.failed.sum() == pytest.approx(dropped + tail)
    assert req.served.sum() == 0.0
    served, r = mm1_served_rate(np.array([100.0, 60.0]), np.array([80.0, 80.0]), TIMEOUT)
    assert r == pytest.approx([0.0, 20.0])
    assert served == pytest.approx([0.0, 60.0 * (1.0 - math.exp(-40.0))])


def test_instance_down_fails_every_arrival():
    # λ = 0.75 x 100 = 75/s down for 30 s of 100: 2250 fail, the rest is served.
    dc = _dc([0.75, 0.25])
    _run_to(dc, 50.0)
    dc.instance_down[0] = True
    dc.note_changed(0)  # state changed without invalidate() is announced (the request model reads it)
    _run_to(dc, 80.0)
    dc.instance_down[0] = False
    dc.note_changed(0)
    _run_to(dc, 100.0)
    req = dc.requests
    assert req is not None
    assert req.failed.sum() == pytest.approx(75.0 * 30.0, rel=1e-9)
    assert req.arrived.sum() == pytest.approx((75.0 + 25.0) * 100.0)


def test_migrating_instance_loses_ten_percent_of_its_service_rate():
    # λ = 50, μ = 125 x 0.9 = 112.5 while migrating out: r = 62.5.
    dc = _dc([0.5])
    dc.migrating_to[0] = 1
    dc.invalidate()
    _run_to(dc, 100.0)
    req = dc.requests
    assert req is not None
    mu = CAPACITY * (1.0 - MIGRATION_DEGRADATION)
    assert req.latency_quantiles((0.5,))[0.5] == pytest.approx(math.log(2.0) / (mu - 50.0), rel=0.02)


def test_failing_replacement_fails_its_share_until_rollback_then_the_source_serves():
    # λ = 62.5/s, replacement at weight 0.1 on host 1; its check fails and takes the 5 s detection
    # delay: 62.5 x 0.1 x 5 = 31.25 requests fail in the cutover. Then rollback: all on the source.
    dc = _dc([0.625])
    lb = SimLoadBalancer(dc.env, dc, np.random.default_rng(0), failure_probability=1.0, detection_delay_s=5.0)
    iid, rep = "vm-00000", f"vm-00000@{dc.host_ids[1]}"
    dc.shadow_host[0] = 1
    dc.busy[0] = True
    lb.set_weights(iid, {iid: 0.9, rep: 0.1})
    _run_to(dc, 30.0)  # dwell
    check = lb.check_health(rep)
    dc.env.run(until=check.event)
    assert dc.env.now == pytest.approx(35.0)
    assert check.event.value is False
    lb.rollback(iid, rep)
    req = dc.requests
    assert req is not None
    assert req.failed_cutover.sum() == pytest.approx(31.25, rel=1e-9)
    assert req.failed.sum() == pytest.approx(31.25, rel=1e-9)  # the source's own tail is ~exp(-100)
    failed_before = req.failed.sum()
    dc.shadow_host[0] = -1  # decommissioned
    dc.busy[0] = False
    dc.invalidate()
    _run_to(dc, 135.0)
    assert req.failed.sum() == pytest.approx(failed_before)
    assert req.served.sum() == pytest.approx(62.5 * 135.0 - 31.25, rel=1e-9)
    assert not req.replacement_failing.any()


def test_requests_disabled_leave_the_datacenter_alone():
    dc = _dc([0.5], enabled=False)
    _run_to(dc, 100.0)
    assert dc.requests is None
    lb = SimLoadBalancer(dc.env, dc, np.random.default_rng(0), failure_probability=1.0)
    check = lb.check_health(f"vm-00000@{dc.host_ids[1]}")
    dc.env.run(until=check.event)
    assert dc.env.now == pytest.approx(100.0 + lb.health_check_s)  # no detection delay without requests


def test_mixture_quantiles_of_an_empty_row_are_nan():
    out = mixture_quantiles(np.zeros((2, 3)), np.array([1.0, 2.0, 3.0]), TIMEOUT, (0.5,))
    assert np.isnan(out[0]).all()


@st.composite
def _segments(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = 4
    segs = []
    for _ in range(draw(st.integers(1, 8))):
        segs.append(
            {
                "dt": draw(st.floats(0.1, 500.0)),
                "util": draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)),
                "down": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                "migrating": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                "shadow": draw(st.lists(st.sampled_from([-1.0, 0.0, 0.1, 0.5, 1.0]), min_size=n, max_size=n)),
                "failing": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                "crowd": draw(st.booleans()),
            }
        )
    return segs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_segments())
def test_requests_are_conserved_over_random_segments(segs: list[dict[str, Any]]):
    dc = _dc([0.5] * 4, n_hosts=4)
    req = dc.requests
    assert req is not None
    t, expected = 0.0, 0.0
    for seg in segs:
        dc.request = np.asarray(seg["util"]) * MIPS
        dc.host_of[:] = 0 if seg["crowd"] else np.arange(4)
        dc.instance_down[:] = seg["down"]
        dc.migrating_to[:] = np.where(seg["migrating"], 3, -1)
        w = np.asarray(seg["shadow"])
        dc.shadow_host[:] = np.where(w >= 0, 2, -1)
        dc.shadow_weight[:] = np.maximum(w, 0.0)
        req.replacement_failing[:] = seg["failing"]
        dc.invalidate()
        t += seg["dt"]
        expected += float(np.sum(seg["util"])) * PEAK * seg["dt"]
        _run_to(dc, t)
    assert req.arrived.sum() == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert req.served.sum() + req.failed.sum() == pytest.approx(req.arrived.sum(), rel=1e-9, abs=1e-9)
    assert (req.failed >= 0).all() and (req.served >= 0).all()
    assert req.failed_cutover.sum() <= req.failed.sum() + 1e-9


REQUEST_KEYS = {
    "requests_total",
    "requests_failed",
    "requests_failed_cutover",
    "request_failure_rate",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
}
REQUEST_COLUMNS = {"requests", "requests_failed", "latency_p95_s"}


def _smoke(overrides: dict[str, Any], **kwargs: Any) -> Any:
    from mirrortwin.config import load_settings
    from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
    from sim.runner import run_scenario

    spec = resolve_for_policy("smoke", policy=None, overrides=overrides)
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    return run_scenario(spec, population, make_scenario_policy(spec), rng=run_rng, **kwargs)


@pytest.mark.usefixtures("traces_root")
def test_smoke_with_requests_off_has_no_request_metrics_and_on_changes_nothing_else():
    base = {"controller.params.threshold": 0.4}
    off = _smoke(base)
    on = _smoke({**base, "requests.enabled": True})
    assert not REQUEST_KEYS & set(off.summary)
    assert not REQUEST_COLUMNS & set(off.timeseries.columns)
    assert set(on.summary) >= REQUEST_KEYS
    # the request model only observes: every other metric and frame is identical
    volatile = {"wall_s", "instance_steps_per_s"}
    assert {k: v for k, v in on.summary.items() if k not in REQUEST_KEYS | volatile} == {
        k: v for k, v in off.summary.items() if k not in volatile
    }
    assert on.timeseries.drop(columns=list(REQUEST_COLUMNS)).equals(off.timeseries)
    assert on.migrations.equals(off.migrations)
    s = on.summary
    assert s["requests_total"] == pytest.approx(float(on.timeseries["requests"].sum()))
    assert 0.0 < s["latency_p50_s"] <= s["latency_p95_s"] <= s["latency_p99_s"] <= TIMEOUT


@pytest.mark.usefixtures("traces_root")
def test_smoke_failed_health_checks_count_cutover_failures():
    overrides = {
        "controller.params.threshold": 0.1,
        "controller.params.allow_cross_ivn": True,
        "controller.risk_threshold": 0.05,
        "requests.enabled": True,
    }
    result = _smoke(overrides, health_failure_probability=1.0)
    s = result.summary
    assert s["lb_rollbacks"] > 0
    assert 0.0 < s["requests_failed_cutover"] <= s["requests_failed"]
    # each rollback fails at most the first step's share (10 %) of a full-CPU instance for 5 s
    assert s["requests_failed_cutover"] <= s["lb_rollbacks"] * PEAK * 0.1 * 5.0 + 1e-9


@pytest.mark.usefixtures("traces_root")
@pytest.mark.parametrize("health_failure_probability", [0.0, 1.0])
def test_incremental_integration_equals_rescanning_every_instance_every_segment(
    monkeypatch: pytest.MonkeyPatch, health_failure_probability: float
) -> None:
    # The request model integrates only the streams the datacenter noted as changed. A state change
    # made without telling it would be integrated at the wrong rate; rescanning everything at every
    # segment cannot miss one. Exercise migrations, cross-IVN shifts, failed health checks, host
    # failures with failover, and compare every request figure.
    from sim.requests import RequestAccounting

    overrides = {
        "controller.params.threshold": 0.3,
        "controller.params.allow_cross_ivn": True,
        "controller.risk_threshold": 0.05,
        "requests.enabled": True,
        "failures.enabled": True,
        "failures.mtbf_s": 20_000.0,
        "failures.repair_s": 3_600.0,
    }
    incremental = _smoke(overrides, health_failure_probability=health_failure_probability)
    monkeypatch.setattr(RequestAccounting, "rescan_every_segment", True)
    rescanned = _smoke(overrides, health_failure_probability=health_failure_probability)
    assert incremental.summary["migrations"] > 0 and incremental.summary["host_failures"] > 0
    for key in REQUEST_KEYS:
        assert incremental.summary[key] == pytest.approx(rescanned.summary[key], rel=1e-12, abs=1e-12), key
    for col in REQUEST_COLUMNS:
        np.testing.assert_allclose(incremental.timeseries[col], rescanned.timeseries[col], rtol=1e-12, atol=1e-12)
