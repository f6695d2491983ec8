"""One-parameter sweeps and the mirroring what-if: what a setting costs and what it buys.

``mirrortwin sweep SCENARIO --param rma.snapshot_interval_s --values 60,300,900,3600`` runs the
scenario once per value (same seed, same instances and demand: only the swept field changes) and
tabulates, per value, what mirroring costs — inter-IVN bandwidth, Mirror Store space — against what it
protects — the data a failure loses (measured when the scenario injects failures, otherwise the
time-averaged data at risk) and migration downtime — next to energy, SLA and migrations. The what-if
plot draws those four against the swept value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from mirrortwin.config import Settings
from mirrortwin.wiring import (
    make_health_sampler,
    make_population,
    make_scenario_policy,
    resolve_for_policy,
    seed_streams,
)
from sim.results import RunResult
from sim.runner import ProgressCallback, run_scenario

SWEEP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("mirror_bandwidth_mbps", "mirroring bandwidth (Mbit/s)"),
    ("mirror_peak_stored_gb", "Mirror Store peak (GB)"),
    ("data_lost_mb", "data lost on failure (MB)"),
    ("data_at_risk_mean_mb", "data at risk, mean per instance (MB)"),
    ("migration_downtime_mean_s", "migration downtime, mean (s)"),
    ("downtime_s", "downtime, total (s)"),
    ("energy_kwh", "energy (kWh)"),
    ("slav", "SLAV"),
    ("migrations", "migrations"),
    ("wall_s", "wall time (s)"),
)
"""Columns of the sweep table, with their labels."""


def parse_values(text: str) -> list[Any]:
    """``60,300,900`` -> ``[60, 300, 900]``; numbers where they parse, else the text."""
    out: list[Any] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            number = float(item)
            out.append(int(number) if number.is_integer() and "." not in item else number)
        except ValueError:
            out.append(item)
    return out


def sweep_row(value: Any, result: RunResult) -> dict[str, Any]:
    """The sweep table's row for one run."""
    s = result.summary
    moves = result.migrations
    downtimes = pd.to_numeric(moves["downtime_s"], errors="coerce") if "downtime_s" in moves else pd.Series([])
    lost = s.get("data_lost_bytes", math.nan)
    return {
        "value": value,
        "mirror_bandwidth_mbps": float(s.get("mirror_bandwidth_bps", math.nan)) / 1e6,
        "mirror_peak_stored_gb": float(s.get("mirror_peak_stored_bytes", math.nan)) / 1e9,
        "data_lost_mb": float(lost) / 1e6 if lost is not None else math.nan,
        "data_at_risk_mean_mb": float(s.get("data_at_risk_mean_bytes", math.nan)) / 1e6,
        "migration_downtime_mean_s": float(downtimes.mean()) if len(downtimes) else math.nan,
        "downtime_s": float(s.get("downtime_s", math.nan)),
        "energy_kwh": float(s["energy_kwh"]),
        "slav": float(s["slav"]),
        "migrations": int(s["migrations"]),
        "wall_s": float(s.get("wall_s", math.nan)),
    }


def run_sweep(
    scenario: str,
    *,
    param: str,
    values: Sequence[Any],
    policy: str | None,
    overrides: Mapping[str, Any],
    settings: Settings,
    progress: Callable[[Any], ProgressCallback | None] | None = None,
) -> tuple[pd.DataFrame, list[RunResult]]:
    """Run ``scenario`` once per value of ``param``; return the table and the runs.

    Every value is resolved (and its policy built) before the first run, so a bad value fails at
    once; the population is built once and shared, so runs differ only in the swept field.

    Raises:
        ScenarioError, PolicyConfigError, TraceNotFoundError, SimulationError: one-line user errors.
    """
    specs = [resolve_for_policy(scenario, policy=policy, overrides={**overrides, param: v}) for v in values]
    for spec in specs:
        make_scenario_policy(spec)
    pop_rng, _ = seed_streams(specs[0].seed)
    population = make_population(specs[0], settings, pop_rng)
    rows, results = [], []
    for value, spec in zip(values, specs, strict=True):
        _, run_rng = seed_streams(spec.seed)
        cb = progress(value) if progress else None
        sampler = make_health_sampler(spec, settings)
        result = run_scenario(
            spec, population, make_scenario_policy(spec), rng=run_rng, progress=cb, health_sampler=sampler
        )
        rows.append(sweep_row(value, result))
        results.append(result)
    table = pd.DataFrame(rows).set_index("value")
    table.index.name = param
    return table, results


def sweep_markdown(table: pd.DataFrame) -> str:
    """The sweep table as markdown, one row per value."""
    labels = dict(SWEEP_COLUMNS)
    head = "| " + " | ".join([str(table.index.name), *(labels[c] for c in table.columns)]) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    lines = [head, rule]
    for value, row in table.iterrows():
        cells = [f"{v:,.4g}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(value), *cells]) + " |")
    return "\n".join(lines)
