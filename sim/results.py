"""What one run of the twin produces: tidy pandas frames plus a summary of headline metrics.

The runner is a pure function of (scenario, policy, seed) -> :class:`RunResult`, so reports, sweeps,
comparisons and tests all consume the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

WORKFLOW_COLUMNS = (
    "instance_id", "target_ivn", "outcome", "start_s", "end_s", "estimated_duration_s", "reason", "move_reason",
)  # fmt: skip
"""Columns of :attr:`RunResult.workflows`."""


@dataclass
class RunResult:
    """Frames and figures of one run.

    Attributes:
        scenario: Scenario name.
        policy: Policy name as run.
        seed: Seed of the run's generator.
        timeseries: One row per accounting step: ``time_s``, ``energy_j`` (that step), ``active_hosts``,
            ``overloaded_hosts``, ``mean_host_util``, ``migrations_started``, ``sla_violation_s``
            (active-host seconds over capacity in the step), ``bytes_moved`` and more; with
            ``requests.enabled`` also ``requests``, ``requests_failed`` and ``latency_p95_s``.
        host_util: Host CPU utilisation, one row per step: a ``time_s`` column, then one column per host id.
        migrations: One row per migration: ``instance_id``, ``source_host``, ``target_host``,
            ``source_ivn``, ``target_ivn``, ``kind``, ``reason``, ``start_s``, ``end_s``, ``bytes``,
            ``estimated_duration_s``, ``downtime_s``, ``outcome``, ``estimated_downtime_s``,
            ``rounds``, ``converged``. ``kind`` is the strategy (precopy, cold, mirror_restore;
            ``cloudsim`` under CloudSim accounting); the estimates are uncontended, made when it started.
        instances: One row per instance: ``instance_id``, ``downtime_s``, ``migrations``,
            ``bytes_moved``, ``final_host``; with failures also ``data_lost_bytes`` and ``failovers``
            (and ``timeseries`` gains ``host_failures`` and ``instances_down``, the mean number of
            instances down over the step).
        workflows: One row per run of the migration workflow (cross-IVN moves): ``instance_id``,
            ``target_ivn``, ``outcome``, ``start_s``, ``end_s``, ``estimated_duration_s``, ``reason``.
        extra: Further frames a world produces (``energy_frames``: the energy of every accounting
            frame under ``accounting = "cloudsim"``).
        summary: Headline metrics (``energy_kwh``, ``slatah``, ``pdm``, ``slav``, ``esv``,
            ``migrations``, ``bytes_moved``, ``wall_s``, per strategy ``migration_strategies``,
            ``migration_estimate_error_mean`` and ``migration_downtime_error_mean`` ...), JSON-serialisable;
            with ``requests.enabled`` also ``requests_total``, ``requests_failed`` (all failures, cutover
            included), ``requests_failed_cutover``, ``request_failure_rate`` and ``latency_p50_s/p95_s/p99_s``.
    """

    scenario: str
    policy: str
    seed: int
    timeseries: pd.DataFrame
    host_util: pd.DataFrame
    migrations: pd.DataFrame
    instances: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    workflows: pd.DataFrame = field(default_factory=pd.DataFrame)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
