"""Figures of a run and of a policy comparison, drawn from :class:`~sim.results.RunResult` frames.

The figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly rather than
through ``pyplot``: no global figure state, no GUI backend picked up from the environment, nothing to
close, and the twin never imports this module (plotting is an output concern of the composition root).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sim.results import RunResult

#: File names of the per-run plots, by what they show.
RUN_PLOTS: dict[str, str] = {
    "host_utilisation": "host_utilisation.png",
    "sla_energy": "sla_energy.png",
    "migrations": "migrations.png",
}
#: Captions of the per-run plots, for reports.
PLOT_CAPTIONS: dict[str, str] = {
    "host_utilisation": "Host CPU utilisation heat map",
    "sla_energy": "SLA violation and energy over time",
    "migrations": "Migrations timeline",
}
COMPARISON_PLOT = "comparison.png"

_DPI = 110
_HOUR_S = 3600.0


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _hours(seconds: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    return np.asarray(seconds, dtype=float) / _HOUR_S


def _title(result: RunResult, what: str) -> str:
    return f"{what} — {result.scenario}, policy {result.policy}, seed {result.seed}"


def host_util_by_time(host_util: pd.DataFrame) -> pd.DataFrame:
    """Return host utilisation indexed by ``time_s`` with only host columns.

    The twin may deliver ``time_s`` as the index or as a leading column; the heat map needs hosts only.
    """
    return host_util.set_index("time_s") if "time_s" in host_util.columns else host_util


def host_utilisation_figure(result: RunResult) -> Figure:
    """Heat map of every host's CPU utilisation over time.

    The colour scale is fixed at 0-100 % with everything above capacity in one saturated colour, so
    overloaded hosts (the cause of SLA violations) stand out and two runs' maps can be compared by eye.
    Hosts that are switched off or empty show as 0.
    """
    util = host_util_by_time(result.host_util)
    fig = _new_figure(10, 5)
    ax = fig.add_subplot()
    if util.empty:
        ax.text(0.5, 0.5, "no host samples", ha="center", va="center", transform=ax.transAxes)
    else:
        hours = _hours(util.index)
        step = float(np.median(np.diff(hours))) if len(hours) > 1 else 1.0
        data = np.nan_to_num(util.to_numpy(dtype=float).T, nan=0.0)
        cmap = _util_colormap()
        image = ax.imshow(
            data,
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            extent=(hours[0], hours[-1] + step, data.shape[0], 0),
        )
        cbar = fig.colorbar(image, ax=ax, extend="max")
        cbar.set_label("CPU utilisation (over 100 % saturates)")
        ax.set_ylabel(f"host ({data.shape[0]} hosts)")
    ax.set_xlabel("simulated time (h)")
    ax.set_title(_title(result, "Host CPU utilisation"))
    return fig


def _util_colormap() -> Colormap:
    return colormaps["viridis"].with_extremes(over="red")


def sla_energy_figure(result: RunResult) -> Figure:
    """SLA violation and energy over time, on a shared time axis.

    The top panel shows active-host seconds over capacity per step and the number of overloaded
    hosts, the bottom one cumulative energy in kWh; reading them together shows what energy a policy
    saves by consolidating and what SLA violation it pays for it.
    """
    ts = result.timeseries
    fig = _new_figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    hours = _hours(ts["time_s"])
    what = "allocated < requested" if result.summary.get("accounting") == "cloudsim" else "over capacity"
    top.plot(hours, ts["sla_violation_s"], color="tab:red", label=f"SLA violation (host·s {what})")
    top.set_ylabel("host·s per step")
    twin = top.twinx()
    twin.step(hours, ts["overloaded_hosts"], where="post", color="tab:orange", alpha=0.7, label="overloaded hosts")
    twin.set_ylabel("overloaded hosts")
    handles = top.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    top.legend(handles=handles, loc="upper right", fontsize="small")
    top.set_title(_title(result, "SLA violation and energy"))
    energy_kwh = np.cumsum(np.asarray(ts["energy_j"], dtype=float)) / 3.6e6
    bottom.plot(hours, energy_kwh, color="tab:blue", label="cumulative energy")
    bottom.set_ylabel("energy (kWh)")
    bottom.set_xlabel("simulated time (h)")
    active = bottom.twinx()
    active.step(hours, ts["active_hosts"], where="post", color="tab:green", alpha=0.6, label="active hosts")
    active.set_ylabel("active hosts")
    handles = bottom.get_legend_handles_labels()[0] + active.get_legend_handles_labels()[0]
    bottom.legend(handles=handles, loc="upper left", fontsize="small")
    for ax in (top, twin, bottom, active):
        ax.set_ylim(bottom=0)  # counts and energy are never negative, even when a series is all zero
    return fig


def migrations_figure(result: RunResult) -> Figure:
    """Migrations over time: how many start per step, and each one from start to end.

    The lower panel marks every migration's start, coloured by outcome, and draws its duration as a
    segment. Migrations last seconds in runs of hours, so the marker keeps each one visible while the
    segment still shows long transfers (bandwidth contention); bursts and rollbacks stand out.
    """
    ts = result.timeseries
    mig = result.migrations
    fig = _new_figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    hours = _hours(ts["time_s"])
    width = float(np.median(np.diff(hours))) if len(hours) > 1 else 1.0
    top.bar(hours, ts["migrations_started"], width=width, align="edge", color="tab:purple")
    top.set_ylabel("started per step")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_title(_title(result, f"Migrations ({len(mig)})"))
    if mig.empty:
        bottom.text(0.5, 0.5, "no migrations", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_yticks([])
    else:
        order = mig.sort_values("start_s", kind="stable").reset_index(drop=True)
        outcomes = order["outcome"].astype(str)
        colours = dict(zip(sorted(outcomes.unique()), _palette(), strict=False))
        marker_size = 12 if len(order) < 200 else 3
        for outcome, rows in order.groupby(outcomes, sort=True):
            colour = colours[str(outcome)]
            starts = _hours(rows["start_s"])
            ends = _hours(rows["end_s"].fillna(rows["start_s"]))
            bottom.hlines(rows.index, starts, ends, colors=colour, linewidth=1.5)
            bottom.scatter(starts, rows.index, s=marker_size, color=colour, label=f"{outcome} ({len(rows)})")
        bottom.set_ylabel("migration # (in order of start)")
        bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.invert_yaxis()
        bottom.legend(loc="upper right", fontsize="small")
    bottom.set_xlabel("simulated time (h)")
    return fig


def _palette() -> list[str]:
    return [
        "tab:blue",
        "tab:red",
        "tab:green",
        "tab:orange",
        "tab:gray",
        "tab:brown",
        "tab:pink",
        "tab:olive",
    ]


def comparison_figure(table: pd.DataFrame, *, title: str) -> Figure:
    """One small bar chart per headline metric, one bar per policy.

    Args:
        table: Policies as rows (index), metrics as columns (labels with units).
        title: Figure title (scenario and seed).
    """
    metrics = list(table.columns)
    ncols = min(4, max(1, len(metrics)))
    nrows = -(-len(metrics) // ncols)
    fig = _new_figure(3.2 * ncols, 2.8 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    policies = [str(p) for p in table.index]
    colours = [_palette()[i % len(_palette())] for i in range(len(policies))]
    for ax, metric in zip(axes, metrics, strict=False):
        values = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
        ax.bar(policies, np.nan_to_num(values), color=colours)
        ax.set_title(metric, fontsize="medium")
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` and return the path."""
    fig.savefig(path, format="png")
    return path


def write_run_plots(result: RunResult, out_dir: Path) -> dict[str, Path]:
    """Draw the three run plots into ``out_dir``; returns paths keyed like :data:`RUN_PLOTS`."""
    figures = {
        "host_utilisation": host_utilisation_figure,
        "sla_energy": sla_energy_figure,
        "migrations": migrations_figure,
    }
    return {key: save(draw(result), out_dir / RUN_PLOTS[key]) for key, draw in figures.items()}


WHATIF_PLOT = "whatif.png"

#: The what-if panels: (sweep-table column, axis label). Data lost is drawn when failures were
#: injected; otherwise the time-averaged data at risk stands in for it.
_WHATIF_PANELS = (
    ("mirror_bandwidth_mbps", "mirroring bandwidth (Mbit/s)"),
    ("mirror_peak_stored_gb", "Mirror Store peak (GB)"),
    ("data_lost_mb", "data lost on failure (MB)"),
    ("migration_downtime_mean_s", "mean migration downtime (s)"),
)


def whatif_figure(table: pd.DataFrame, *, title: str) -> Figure:
    """Four panels against the swept value: bandwidth, storage, data lost (or at risk), downtime."""
    fig = _new_figure(10.0, 7.0)
    axes = np.atleast_1d(fig.subplots(2, 2)).ravel()
    x = pd.to_numeric(pd.Series(table.index), errors="coerce").to_numpy(dtype=float)
    numeric = not np.isnan(x).any()
    positions = x if numeric else np.arange(len(table))
    for ax, (column, label) in zip(axes, _WHATIF_PANELS, strict=True):
        values = pd.to_numeric(table.get(column, pd.Series(np.nan, index=table.index)), errors="coerce")
        if column == "data_lost_mb" and values.isna().all():
            values = pd.to_numeric(table["data_at_risk_mean_mb"], errors="coerce")
            label = "data at risk, mean per instance (MB)"
        ax.plot(positions, values.to_numpy(dtype=float), marker="o", color="tab:blue")
        if values.isna().all():
            ax.text(0.5, 0.5, "nothing to show in these runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        ax.set_xlabel(str(table.index.name))
        if numeric and len(x) > 1 and x.min() > 0 and x.max() / x.min() >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(positions, [str(v) for v in table.index])
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig
