"""Headline metrics of a run and the text that presents them (terminal table and ``report.md``).

The metrics are those of Beloglazov & Buyya's consolidation studies (energy, SLATAH, PDM, SLAV, ESV)
plus the migration costs this twin adds (bytes moved, downtime). :data:`HEADLINE` fixes their order,
labels and units once, so the terminal table, the Markdown reports, the comparison CSV and the bar
plot all say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirrortwin.plots import PLOT_CAPTIONS
from sim.results import RunResult


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"


def _count(value: float) -> str:
    return f"{round(value):,d}"


def _gigabytes(value: float) -> str:
    return f"{value / 1e9:,.3f} GB"


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


@dataclass(frozen=True)
class Metric:
    """A headline metric: where it is found in the run summary and how people read it.

    Attributes:
        key: Key in :attr:`RunResult.summary` and column in comparison CSVs (raw SI value).
        label: Name shown in tables and plots.
        unit_label: Label with the unit of the plotted (scaled) value.
        scale: Factor from the raw value to the plotted value (e.g. fraction -> percent).
        fmt: Formatter of the raw value for tables.
    """

    key: str
    label: str
    unit_label: str
    scale: float
    fmt: Callable[[float], str]


#: The headline metrics, in report order. SLATAH, PDM and SLAV are fractions in the summary.
HEADLINE: tuple[Metric, ...] = (
    Metric("energy_kwh", "energy", "energy (kWh)", 1.0, lambda v: f"{v:,.2f} kWh"),
    Metric("slatah", "SLATAH", "SLATAH (%)", 100.0, _percent),
    Metric("pdm", "PDM", "PDM (%)", 100.0, _percent),
    Metric("slav", "SLAV", "SLAV (%)", 100.0, _percent),
    Metric("esv", "ESV", "ESV (kWh x SLAV)", 1.0, _number),
    Metric("migrations", "migrations", "migrations", 1.0, _count),
    Metric("bytes_moved", "bytes moved", "moved (GB)", 1e-9, _gigabytes),
    Metric("downtime_s", "downtime", "downtime (s)", 1.0, _seconds),
    Metric("data_lost_bytes", "data lost", "data lost (GB)", 1e-9, _gigabytes),
    Metric("requests_failed", "requests failed", "requests failed", 1.0, _count),
)

#: Metrics a run only has when the scenario enables what produces them (failures, requests); they
#: are left out of tables rather than shown as n/a.
OPTIONAL = frozenset({"data_lost_bytes", "requests_failed"})


def headline_values(result: RunResult) -> dict[str, float]:
    """Raw headline values of a run, keyed by :attr:`Metric.key`.

    The summary is the source; downtime falls back to the per-instance sum when the summary does not
    carry it, since that total is exactly what the instances frame records.
    """
    summary = result.summary
    values: dict[str, float] = {}
    for metric in HEADLINE:
        if metric.key in OPTIONAL and summary.get(metric.key) is None:
            continue  # the run has no failures / requests: the metric does not exist, it is not n/a
        if metric.key in summary and summary[metric.key] is not None:
            values[metric.key] = float(summary[metric.key])
        elif metric.key == "downtime_s" and "downtime_s" in result.instances:
            values[metric.key] = float(result.instances["downtime_s"].sum())
        elif metric.key == "migrations":
            values[metric.key] = float(len(result.migrations))
        else:
            values[metric.key] = float("nan")
    return values


def _fmt(metric: Metric, value: float) -> str:
    return "n/a" if pd.isna(value) else metric.fmt(value)


def headline_table(result: RunResult) -> str:
    """Two aligned columns (metric, value) for the terminal."""
    values = headline_values(result)
    rows = [(m.label, _fmt(m, values[m.key])) for m in HEADLINE if m.key in values]
    width = max(len(label) for label, _ in rows)
    header = f"{result.scenario} / {result.policy} / seed {result.seed}"
    return "\n".join([header, *(f"  {label:<{width}}  {value}" for label, value in rows)])


def duration_h(result: RunResult) -> float:
    """Return the simulated span of the run in hours (last accounting step's end)."""
    ts = result.timeseries
    if ts.empty:
        return 0.0
    times = ts["time_s"].to_numpy(dtype=float)
    step = float(times[1] - times[0]) if len(times) > 1 else 0.0
    return float(times[-1] - times[0] + step) / 3600.0


def reading(result: RunResult) -> str:
    """One sentence that reads the run's numbers for someone who does not know the acronyms."""
    v = headline_values(result)
    hosts_over = "never overloaded" if not v["slatah"] else f"overloaded {_percent(v['slatah'])} of their active time"
    if v["migrations"]:
        moves = (
            f"made {_count(v['migrations'])} migrations that moved {_gigabytes(v['bytes_moved'])} and cost "
            f"{_seconds(v['downtime_s'])} of downtime in all, degrading migrated instances' performance by "
            f"{_percent(v['pdm'])} (PDM)"
        )
    else:
        moves = "made no migrations"
    return (
        f"Over {duration_h(result):.3g} h of simulated time the {result.policy} policy used "
        f"{_fmt(HEADLINE[0], v['energy_kwh'])} and {moves}; hosts were {hosts_over} (SLATAH), "
        f"so the combined SLA violation SLAV = SLATAH x PDM is {_percent(v['slav'])} "
        f"and energy x SLAV (ESV, lower is better) is {_number(v['esv'])}."
    )


def strategy_section(result: RunResult) -> list[str]:
    """Estimate against outcome per migration strategy, when the run's migrations record both."""
    m = result.migrations
    needed = {"kind", "start_s", "end_s", "estimated_duration_s", "downtime_s", "outcome"}
    if m.empty or not needed <= set(m.columns):
        return []
    ok = m[m["outcome"].astype(str).isin(["Succeeded", "Restored"])]
    if ok.empty:
        return []
    lines = [
        "## Migrations: estimate against outcome",
        "",
        "The controller estimates every applicable strategy from uncontended rates and picks one; the "
        "outcome is what the shared network and the instance's dirtying made of it.",
        "",
        "| strategy | migrations | duration estimated (mean s) | duration actual (mean s) "
        "| downtime estimated (mean s) | downtime actual (mean s) | not converged |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, rows in ok.groupby(ok["kind"].astype(str)):
        actual = (pd.to_numeric(rows["end_s"]) - pd.to_numeric(rows["start_s"])).mean()
        est_down = pd.to_numeric(rows["estimated_downtime_s"]).mean() if "estimated_downtime_s" in rows else math.nan
        stuck = int((rows["converged"] == False).sum()) if "converged" in rows else 0  # noqa: E712
        lines.append(
            f"| {kind} | {len(rows):,} | {pd.to_numeric(rows['estimated_duration_s']).mean():,.2f} | {actual:,.2f} "
            f"| {est_down:,.3f} | {pd.to_numeric(rows['downtime_s']).mean():,.3f} | {stuck:,} |"
        )
    return [*lines, ""]


def run_report(result: RunResult, plots: Mapping[str, Path], *, description: str = "") -> str:
    """Markdown report of one run; ``plots`` are linked relative to the report's folder."""
    values = headline_values(result)
    lines = [
        f"# {result.scenario} — policy `{result.policy}`",
        "",
    ]
    if description:
        lines += [description.strip(), ""]
    lines += [
        f"* scenario: `{result.scenario}`",
        f"* policy: `{result.policy}`",
        f"* seed: {result.seed}",
        f"* simulated time: {duration_h(result):.3g} h",
        "",
        "## Headline metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {m.label} | {_fmt(m, values[m.key])} |" for m in HEADLINE if m.key in values),
        "",
        reading(result),
        "",
        "SLATAH: share of active host time spent at 100 % CPU; PDM: performance degradation of migrated "
        "instances during migration; SLAV = SLATAH x PDM; ESV = energy (kWh) x SLAV "
        "(Beloglazov & Buyya, CCPE 2012).",
        "",
    ]
    lines += strategy_section(result)
    if plots:
        lines += ["## Plots", ""]
        for key, path in plots.items():
            lines += [f"![{PLOT_CAPTIONS.get(key, key)}]({path.name})", ""]
    lines += [
        "## Files",
        "",
        "* `timeseries.csv`, `timeseries.parquet`: one row per accounting step",
        "* `host_util.parquet`: host CPU utilisation, steps x hosts",
        "* `migrations.parquet`: one row per migration",
        "* `instances.parquet`: one row per instance",
        "* `workflows.parquet`: one row per run of the cross-IVN migration workflow, with its outcome",
        "* `summary.json`: every summary figure of the run",
        "",
    ]
    return "\n".join(lines)


#: Failure figures carried in a comparison's frame (and CSV) next to the headline metrics, for the
#: explanation of what mirroring and predictive migration changed.
FAILURE_KEYS = (
    "host_failures", "instances_failed_over", "failovers", "failover_downtime_s", "failover_mean_s", "rma_enabled",
)  # fmt: skip


def comparison_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """Raw headline values, one row per policy (index ``policy``), columns :attr:`Metric.key`.

    Runs with failures also carry :data:`FAILURE_KEYS` and ``moves_on_failure_risk`` (instances
    moved ahead of a predicted failure, successfully).
    """
    rows = []
    for r in results:
        row = headline_values(r)
        if r.summary.get("host_failures") is not None:
            row.update({k: _number_or_nan(r.summary.get(k)) for k in FAILURE_KEYS})
            row["moves_on_failure_risk"] = float(_risk_moves(r))
        rows.append(row)
    frame = pd.DataFrame(rows, index=[r.policy for r in results])
    frame.index.name = "policy"
    return frame


def _number_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _risk_moves(result: RunResult) -> int:
    """Successful moves made because of a failure risk (cross-IVN workflows and live migrations)."""
    count = 0
    for frame, column in ((result.workflows, "move_reason"), (result.migrations, "reason")):
        if len(frame) and column in frame:
            ok = frame["outcome"].astype(str).str.lower() == "succeeded"
            count += int(((frame[column].astype(str) == "failure_risk") & ok).sum())
    return count


def failure_reading(frame: pd.DataFrame) -> str:
    """Explain, from the numbers, what mirroring and predictive migration changed when hosts failed."""
    if "host_failures" not in frame.columns or frame["host_failures"].isna().all():
        return ""
    lines = ["## Failures: what mirroring and predictive migration changed", ""]
    for label, row in frame.iterrows():
        n = int(row["instances_failed_over"])
        events = int(row["failovers"]) if not pd.isna(row.get("failovers")) else n
        lost = float(row.get("data_lost_bytes", float("nan")))
        per = f"{lost / events / 1e9:,.3f} GB per failover" if events else "none"
        ahead = int(row.get("moves_on_failure_risk", 0))
        mirror = "with a mirror" if row.get("rma_enabled", 1.0) else "without a mirror"
        lines.append(
            f"* `{label}` ({mirror}): {int(row['host_failures'])} host failures; {events} failovers of {n} "
            f"instances, each back in service after {row['failover_mean_s']:,.1f} s on average "
            f"({row['failover_downtime_s']:,.0f} s in all); data lost {lost / 1e9:,.3f} GB ({per}); "
            f"{ahead} instances were moved ahead of a predicted failure."
        )
    lines.append("")
    served = frame[frame["instances_failed_over"] > 0]
    if len(served) >= 2:
        slow, fast = served["failover_mean_s"].idxmax(), served["failover_mean_s"].idxmin()
        lines.append(
            f"A failover took {served.at[slow, 'failover_mean_s']:,.0f} s in `{slow}` and "
            f"{served.at[fast, 'failover_mean_s']:,.0f} s in `{fast}`: without a mirror a replacement is "
            "provisioned, booted and starts empty (detection + boot, and the instance's whole state is lost); "
            "with one it is restored from the latest snapshot in the store's IVN (detection + restore at the "
            "store's throughput), and only the writes since that snapshot reached the store are lost."
        )
    ahead = frame[frame["moves_on_failure_risk"] > 0]
    if len(ahead):
        best = ahead["failover_downtime_s"].idxmin()
        lines.append(
            f"`{best}` read the hosts' rising error counts and moved {int(ahead.at[best, 'moves_on_failure_risk'])} "
            "instances to the IVN holding their mirror before their host failed (a mirror restore plus a short "
            f"catch-up, with traffic shifted progressively), leaving {int(ahead.at[best, 'instances_failed_over'])} "
            "failovers; its cost is the extra transfers and the replacements' warm-up, visible in bytes moved."
        )
    lines += [
        "",
        "Runs share the seed, so failures strike the same hosts at the same times; which instances sit on a "
        "failing host depends on each run's own placement decisions, hence different failover counts.",
        "",
    ]
    return "\n".join(lines)


def comparison_markdown(frame: pd.DataFrame) -> str:
    """Format the comparison as a Markdown table with formatted values, metrics as columns."""
    metrics = _shown(frame)
    header = "| policy | " + " | ".join(m.label for m in metrics) + " |"
    rule = "|---|" + "---|" * len(metrics)
    rows = [
        f"| {policy} | " + " | ".join(_fmt(m, float(frame.at[policy, m.key])) for m in metrics) + " |"
        for policy in frame.index
    ]
    return "\n".join([header, rule, *rows])


def _shown(frame: pd.DataFrame) -> list[Metric]:
    """Headline metrics of a comparison, without optional ones no run has."""
    return [
        m
        for m in HEADLINE
        if m.key in frame.columns and (m.key not in OPTIONAL or not pd.to_numeric(frame[m.key]).isna().all())
    ]


def _best(frame: pd.DataFrame, key: str) -> str:
    column = pd.to_numeric(frame[key], errors="coerce")
    if column.isna().all():
        return "n/a"
    low = column.min()
    return ", ".join(str(p) for p in column.index[column == low])


def comparison_reading(frame: pd.DataFrame) -> str:
    """One sentence naming the best policy on energy, SLA violation and their product."""
    return (
        f"Lowest energy: {_best(frame, 'energy_kwh')}; lowest SLA violation (SLAV): {_best(frame, 'slav')}; "
        f"lowest ESV, which weighs the two together: {_best(frame, 'esv')}; "
        f"fewest migrations: {_best(frame, 'migrations')}. "
        "All runs share the scenario's seed, so they replay the same instances and demand."
    )


def comparison_report(
    scenario: str, seed: int, frame: pd.DataFrame, *, plot: Path | None, run_dirs: Mapping[str, Path]
) -> str:
    """Markdown report of a policy comparison, linking the bar plot and each run's own report."""
    lines = [
        f"# {scenario} — policy comparison",
        "",
        f"* scenario: `{scenario}`",
        f"* seed: {seed} (same for every policy)",
        f"* policies: {', '.join(f'`{p}`' for p in frame.index)}",
        "",
        "## Headline metrics",
        "",
        comparison_markdown(frame),
        "",
        comparison_reading(frame),
        "",
    ]
    explained = failure_reading(frame)
    if explained:
        lines += [explained]
    if plot is not None:
        lines += ["## Plot", "", f"![comparison]({plot.name})", ""]
    lines += ["## Runs", ""]
    lines += [f"* `{policy}`: [{path.name}/report.md]({path.name}/report.md)" for policy, path in run_dirs.items()]
    lines += [
        "",
        "`comparison.csv` holds the raw values (SLATAH, PDM and SLAV as fractions, bytes, seconds).",
        "",
    ]
    return "\n".join(lines)


def comparison_plot_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Scale the comparison for plotting, columns renamed to labels with units."""
    metrics = _shown(frame)
    return pd.DataFrame({m.unit_label: frame[m.key] * m.scale for m in metrics}, index=frame.index)


def seeds_summary(frames: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean and 95 % confidence half-width of every metric over seeds, one row per policy.

    ``frames`` maps a seed to its :func:`comparison_frame`. The interval is Student's t on the seeds'
    values (``t(0.975, n-1) x s / sqrt(n)``): each seed draws its own instances, demand mapping and
    failures, so the runs are independent replications. NaN with a single seed.

    Returns:
        Columns ``<metric>_mean`` and ``<metric>_ci95`` for each metric, and ``seeds``.
    """
    from scipy.stats import t as student_t

    long = pd.concat({seed: frame for seed, frame in frames.items()}, names=["seed", "policy"])
    policies = list(dict.fromkeys(long.index.get_level_values("policy")))
    rows = []
    for policy in policies:
        part = long.xs(policy, level="policy").apply(pd.to_numeric, errors="coerce")
        n = len(part)
        row: dict[str, float] = {"seeds": float(n)}
        for key in part.columns:
            values = part[key].dropna()
            row[f"{key}_mean"] = float(values.mean()) if len(values) else float("nan")
            if len(values) > 1:
                half = student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                row[f"{key}_ci95"] = float(half)
            else:
                row[f"{key}_ci95"] = float("nan")
        rows.append(row)
    out = pd.DataFrame(rows, index=pd.Index(policies, name="policy"))
    return out


def seeds_markdown(summary: pd.DataFrame) -> str:
    """The seeds summary as a Markdown table: ``mean ± 95 % half-width`` for each headline metric."""
    metrics = [m for m in HEADLINE if f"{m.key}_mean" in summary.columns and not summary[f"{m.key}_mean"].isna().all()]
    header = "| policy | seeds | " + " | ".join(m.label for m in metrics) + " |"
    rule = "|---|---:|" + "---|" * len(metrics)
    rows = []
    for policy in summary.index:
        cells = []
        for m in metrics:
            mean, half = float(summary.at[policy, f"{m.key}_mean"]), float(summary.at[policy, f"{m.key}_ci95"])
            cells.append(_fmt(m, mean) + ("" if pd.isna(half) else f" ± {_fmt(m, half)}"))
        rows.append(f"| {policy} | {int(summary.at[policy, 'seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])
