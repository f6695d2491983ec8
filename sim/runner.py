"""One run of the twin: a pure function of (scenario, population, policy, generator) -> RunResult.

The runner builds the SimPy world, wires the adapters to the core's :class:`MigrationController`,
drives it through :mod:`sim.driver`, and turns the accumulators into pandas frames. Sweeps,
comparisons, training environments and the dashboard all call this one function.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from policies.controller import ControllerSettings, MigrationController
from policies.ports import Policy
from policies.waiting import Delay, Workflow
from scenarios.population import InstancePopulation
from scenarios.smart_health import SmartHealthSampler
from scenarios.spec import Scenario
from sim.datacenter import Datacenter
from sim.driver import drive
from sim.failures import HostFailures
from sim.load_balancer import SimLoadBalancer
from sim.migration import MIGRATION_COLUMNS, MigrationExecutor
from sim.mirroring import SimMirroring
from sim.results import WORKFLOW_COLUMNS, RunResult
from sim.world import SimulationError, build_world

ProgressCallback = Callable[[float, float], None]


def run_scenario(
    scenario: Scenario,
    population: InstancePopulation,
    policy: Policy,
    *,
    rng: np.random.Generator,
    progress: ProgressCallback | None = None,
    health_failure_probability: float | None = None,
    health_sampler: SmartHealthSampler | None = None,
) -> RunResult:
    """Simulate ``scenario`` under ``policy`` and return its frames and summary.

    Args:
        scenario: The validated scenario.
        population: Its instances and demand (see :func:`scenarios.workload.build_population`).
        policy: The decision strategy the controller runs.
        rng: The run's generator; every random draw of the twin comes from it.
        progress: Called as ``progress(now_s, duration_s)`` once per accounting step.
        health_failure_probability: Chance that a replacement fails a health check; overrides
            the scenario's ``controller.health_failure_probability``.
        health_sampler: Real SMART readings for ``failures.health_model = "smart"``.
    """
    if scenario.accounting == "cloudsim":
        from sim.cloudsim_accounting import run_cloudsim_accounting

        return run_cloudsim_accounting(scenario, population, policy, rng=rng)
    wall0 = time.perf_counter()
    world = build_world(
        scenario,
        population,
        rng=rng,
        health_failure_probability=health_failure_probability,
        health_sampler=health_sampler,
    )
    env, dc, mirroring, executor, lb = world.env, world.dc, world.mirroring, world.executor, world.lb
    controller = MigrationController(
        policy,
        telemetry=world.telemetry,
        provider=world.provider,
        store=world.store,
        lb=lb,
        clock=world.clock,
        settings=ControllerSettings(
            interval_s=scenario.controller.interval_s,
            history_len=scenario.controller.history_len,
            workflow=world.workflow_settings(),
        ),
    )
    duration = dc.n_steps * dc.step_s

    at_risk = np.zeros(dc.n_steps)

    def steps():  # type: ignore[no-untyped-def]
        for k in range(dc.n_steps):
            dc.advance()
            dc.k = k
            dc.set_demand(k + int(scenario.start_offset_s // dc.step_s))
            dc.record_step_state(k)
            if scenario.rma.enabled:
                at_risk[k] = float(mirroring.data_at_risk_bytes(env.now).sum())
            if progress is not None:
                progress(env.now, duration)
            yield env.timeout(dc.step_s)

    def control() -> Workflow[None]:
        yield Delay(scenario.controller.interval_s)
        yield from controller.run()

    env.process(steps())
    drive(env, control())
    env.run(until=duration)
    dc.k = dc.n_steps - 1
    dc.advance()
    if world.failures is not None:
        world.failures.close()
    if progress is not None:
        progress(duration, duration)
    wall = time.perf_counter() - wall0
    result = _collect(scenario, policy, dc, mirroring, executor, controller, lb, wall, failures=world.failures)
    _add_mirror_figures(result, scenario, mirroring, at_risk)
    net = dc.network
    in_flight = net.bytes_in_flight()  # moves every transfer up to now first, so the four add up
    result.summary["network_bytes"] = {
        "started": dict(net.bytes_started),
        "delivered": dict(net.bytes_delivered),
        "lost": dict(net.bytes_lost),
        "in_flight": in_flight,
    }
    return result


def _add_mirror_figures(result: RunResult, scenario: Scenario, mirroring: SimMirroring, at_risk: np.ndarray) -> None:
    """What mirroring costs and protects: store use, refusals, and the data a failure would lose."""
    n = max(len(mirroring.latest_s), 1)
    enabled = scenario.rma.enabled
    result.timeseries["data_at_risk_bytes"] = at_risk if enabled else np.nan
    result.summary.update(
        {
            "rma_enabled": bool(enabled),
            "mirror_peak_stored_bytes": float(mirroring.chains.peak_used.sum()),
            "mirror_snapshots_refused": int(mirroring.chains.refused.sum()),
            "mirror_snapshots_skipped_uploading": int(mirroring.snapshots_skipped_uploading.sum()),
            "mirror_bandwidth_bps": 8.0 * mirroring.bytes_sent / scenario.duration_s,
            # mean over the run of the bytes written since each instance's last stored snapshot
            "data_at_risk_mean_bytes": float(at_risk.mean()) / n if enabled else float("nan"),
        }
    )


def _collect(
    scenario: Scenario,
    policy: Policy,
    dc: Datacenter,
    mirroring: SimMirroring,
    executor: MigrationExecutor,
    controller: MigrationController,
    lb: SimLoadBalancer,
    wall_s: float,
    *,
    failures: HostFailures | None = None,
) -> RunResult:
    s = dc.step
    times = np.arange(dc.n_steps) * dc.step_s
    with np.errstate(divide="ignore", invalid="ignore"):
        slatah_step = np.where(s.active_host_s > 0, s.violation_host_s / s.active_host_s, 0.0)
    timeseries = pd.DataFrame(
        {
            "time_s": times,
            "energy_j": s.energy_j,
            "active_hosts": s.active_hosts,
            "overloaded_hosts": s.overloaded_hosts,
            "mean_active_util": s.mean_active_util,
            "active_host_s": s.active_host_s,
            "sla_violation_s": s.violation_host_s,
            "slatah": slatah_step,
            "requested_mips_s": s.requested_mips_s,
            "degraded_mips_s": s.degraded_mips_s,
            "unserved_mips_s": s.unserved_mips_s,
            "migrations_started": s.migrations_started,
            "migrations_finished": s.migrations_finished,
            "migration_bytes": s.migration_bytes,
            "snapshot_bytes": s.snapshot_bytes,
        }
    )
    if dc.requests is not None:
        timeseries = timeseries.assign(**dc.requests.timeseries_columns())
    host_util = pd.DataFrame(dc.host_util_rows, columns=list(dc.host_ids))
    host_util.insert(0, "time_s", times)
    migrations = pd.DataFrame.from_records(executor.rows, columns=list(MIGRATION_COLUMNS))
    workflows = [
        {
            "instance_id": r.instance_id,
            "target_ivn": r.target_ivn,
            "outcome": str(r.outcome),
            "start_s": r.start_time,
            "end_s": r.end_time,
            "estimated_duration_s": r.schedule.estimated_duration if r.schedule else float("nan"),
            "reason": r.reason,
            "move_reason": r.move_reason,
        }
        for r in controller.results
    ]
    instances = pd.DataFrame(
        {
            "instance_id": list(dc.instance_ids),
            "downtime_s": dc.instance_downtime_s,
            "migrations": dc.instance_migrations,
            "bytes_moved": dc.instance_bytes_moved,
            "snapshots": mirroring.snapshots_taken,
            "final_host": [dc.host_ids[h] if h >= 0 else "" for h in dc.host_of],
        }
    )
    energy_kwh = float(s.energy_j.sum()) / 3.6e6
    active = float(s.active_host_s.sum())
    requested = float(s.requested_mips_s.sum())
    slatah = float(s.violation_host_s.sum()) / active if active > 0 else 0.0
    pdm = float(s.degraded_mips_s.sum()) / requested if requested > 0 else 0.0
    slav = slatah * pdm
    outcomes: dict[str, int] = {}
    for w in workflows:
        outcomes[w["outcome"]] = outcomes.get(w["outcome"], 0) + 1
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "policy": policy.name,
        "seed": scenario.seed,
        "hosts": len(dc.host_ids),
        "instances": len(dc.instance_ids),
        "steps": dc.n_steps,
        "duration_s": dc.n_steps * dc.step_s,
        "energy_kwh": energy_kwh,
        "slatah": slatah,
        "pdm": pdm,
        "slav": slav,
        "esv": energy_kwh * slav,
        "overall_sla_violation": float(s.unserved_mips_s.sum()) / requested if requested > 0 else 0.0,
        "migrations": int(s.migrations_started.sum()),
        "migrations_finished": int(s.migrations_finished.sum()),
        "workflow_outcomes": outcomes,
        "bytes_moved": float(s.migration_bytes.sum()),
        "bytes_mirrored": float(mirroring.bytes_sent),
        "mirror_stored_bytes": mirroring.stored_bytes(),
        "downtime_s": float(dc.instance_downtime_s.sum()),
        **migration_strategy_summary(migrations),
        "mean_active_hosts": float(s.active_hosts.mean()) if dc.n_steps else 0.0,
        "lb_redirects": lb.redirects,
        "lb_rollbacks": lb.rollbacks,
        "wall_s": wall_s,
        "instance_steps_per_s": len(dc.instance_ids) * dc.n_steps / wall_s if wall_s > 0 else math.inf,
    }
    if failures is not None:  # issue 4's failure figures, only when failures are simulated
        timeseries["host_failures"] = failures.step_host_failures
        timeseries["instances_down"] = failures.step_down_s / dc.step_s  # mean over the step
        instances["data_lost_bytes"] = failures.instance_data_lost_bytes
        instances["failovers"] = failures.instance_failovers
        summary.update(failures.summary())
    if dc.requests is not None:
        summary.update(dc.requests.summary())
    return RunResult(
        scenario=scenario.name,
        policy=policy.name,
        seed=scenario.seed,
        timeseries=timeseries,
        host_util=host_util,
        migrations=migrations,
        instances=instances,
        summary=summary,
        workflows=pd.DataFrame(workflows, columns=list(WORKFLOW_COLUMNS)),
    )


def migration_strategy_summary(migrations: pd.DataFrame) -> dict[str, Any]:
    """Per-strategy counts and how far the a-priori estimates were from the outcomes.

    ``migration_estimate_error_mean`` is the mean of ``|actual - estimate| / estimate`` of the
    duration per strategy (``kind``), ``migration_downtime_error_mean`` the same for the downtime;
    the estimates are uncontended, so the errors measure what contention and demand changes did.
    ``migrations_not_converged`` counts pre-copies stopped by the round limit.
    """
    out: dict[str, Any] = {
        "migration_strategies": {},
        "migration_estimate_error_mean": {},
        "migration_downtime_error_mean": {},
        "migrations_not_converged": 0,
    }
    if migrations.empty:
        return out
    actual = migrations["end_s"] - migrations["start_s"]
    with np.errstate(divide="ignore", invalid="ignore"):
        dur_err = (actual - migrations["estimated_duration_s"]).abs() / migrations["estimated_duration_s"]
        down_err = (migrations["downtime_s"] - migrations["estimated_downtime_s"]).abs() / migrations[
            "estimated_downtime_s"
        ]
    frame = pd.DataFrame({"kind": migrations["kind"], "dur": dur_err, "down": down_err}).replace(
        [np.inf, -np.inf], np.nan
    )
    grouped = frame.groupby("kind")
    out["migration_strategies"] = {str(k): int(v) for k, v in grouped.size().items()}
    out["migration_estimate_error_mean"] = {str(k): float(v) for k, v in grouped["dur"].mean().items()}
    out["migration_downtime_error_mean"] = {str(k): float(v) for k, v in grouped["down"].mean().items()}
    out["migrations_not_converged"] = int((~migrations["converged"].astype(bool)).sum())
    return out


__all__ = ["SimulationError", "migration_strategy_summary", "run_scenario"]
