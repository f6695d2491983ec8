"""Rolling-origin backtest of the forecasters on real traces (``mirrortwin forecast-eval``).

Protocol, per trace family (PlanetLab, Bitbrains, Azure; CPU utilisation on the native 300 s grid):

* **Split by instance**: a seeded permutation of the trace's series; the first ``n_train_series``
  are training instances, the next ``n_series`` test instances (disjoint).
* **Split by time**: the first ``train_fraction`` of the grid is training time; forecast origins are
  spread evenly over the rest (``n_origins`` of them, the last one leaving room for the longest
  horizon).
* The LSTM is trained on training instances x training time only. The statistical forecasters have
  no trained state to carry over: at each origin they are fitted on the test series' own past (the
  ``history_steps`` before the origin), which is what they would see live. Every parameter is fixed
  in advance (ARIMA order, season, window): nothing is tuned on the test part.
* Errors at each horizon ``h`` over every (test series, origin): MAE, RMSE, MASE and the coverage
  of the 95 % interval. MASE is the fleet-level ratio ``mean |error| / mean scale``, where a
  series' scale is its in-sample seasonal-naive MAE on the same history window. (The per-series
  average of ``|error| / scale`` is dominated by near-idle VMs whose in-sample error is ~0: one
  such VM waking up scores in the thousands.)
* Forecasters that can use exogenous input run twice: without, and with calendar features
  (hour-of-day, day-of-week) derived from the trace's timestamps.

The result is a long table (``forecast_eval.csv``), a markdown pivot (``forecast_eval.md``) and a
plot of MASE by horizon (``forecast_eval.png``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirrortwin.config import Settings
from policies.forecasting import (
    Exogenous,
    FloatArray,
    Forecaster,
    ForecastInputError,
    calendar_features,
    covered_cycles,
    make_forecaster,
    mase_scale,
    planetlab_day_epoch,
)

FAMILIES: tuple[str, ...] = ("planetlab", "bitbrains", "azure")
FORECASTERS: tuple[str, ...] = ("naive", "seasonal_naive", "local_regression", "arima", "auto_arima", "lstm")
EXOG_CAPABLE: frozenset[str] = frozenset({"arima", "auto_arima", "lstm"})
SEASON_STEPS = 288
"""Season of the seasonal-naive forecaster and of the MASE scale: one day of 300 s steps."""

CSV_NAME = "forecast_eval.csv"
MARKDOWN_NAME = "forecast_eval.md"
PLOT_NAME = "forecast_eval.png"


@dataclass(frozen=True)
class BacktestConfig:
    """What to backtest and how big; the defaults finish in a few minutes on two cores.

    Attributes:
        families: Trace families (default subsets of each).
        forecasters: Forecaster names (see :data:`FORECASTERS`).
        horizons: Steps ahead reported (the forecasters forecast up to the largest).
        n_series: Test instances per family.
        n_origins: Forecast origins per family, evenly spread over the test time.
        history_steps: Steps of history each forecast is fitted on (at most).
        train_fraction: Share of the grid that is training time.
        n_train_series: Training instances per family (for the LSTM).
        lstm_steps: Optimiser steps of each LSTM training.
        with_exog: Also run the exogenous-capable forecasters with calendar features.
        seed: Seed of the instance split and of LSTM training.
        level: Interval coverage asked for.
        arima_order: Order of the fixed-order ARIMA.
    """

    families: tuple[str, ...] = FAMILIES
    forecasters: tuple[str, ...] = FORECASTERS
    horizons: tuple[int, ...] = (1, 3, 6, 12)
    n_series: int = 16
    n_origins: int = 3
    history_steps: int = 576
    train_fraction: float = 0.5
    n_train_series: int = 100
    lstm_steps: int = 150
    with_exog: bool = True
    seed: int = 0
    level: float = 0.95
    arima_order: tuple[int, int, int] = (1, 0, 1)

    def check(self) -> None:
        """Raise :class:`ForecastInputError` naming the first bad field."""
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ForecastInputError("families", f"choose from {', '.join(FAMILIES)}; got {list(self.families)}")
        unknown = [f for f in self.forecasters if f not in FORECASTERS]
        if unknown or not self.forecasters:
            raise ForecastInputError(
                "forecasters", f"choose from {', '.join(FORECASTERS)}; got {list(self.forecasters)}"
            )
        if not self.horizons or min(self.horizons) < 1:
            raise ForecastInputError("horizons", f"must be positive steps, got {list(self.horizons)}")
        for name in ("n_series", "n_origins", "history_steps", "n_train_series", "lstm_steps"):
            if getattr(self, name) < 1:
                raise ForecastInputError(name, f"must be at least 1, got {getattr(self, name)}")
        if not 0.1 <= self.train_fraction <= 0.9:
            raise ForecastInputError("train_fraction", f"must be in [0.1, 0.9], got {self.train_fraction}")


@dataclass
class _Totals:
    """Running sums of one (family, forecaster, exog) cell across origins."""

    abs_err: list[FloatArray] = field(default_factory=list)
    sq_err: list[FloatArray] = field(default_factory=list)
    scale: list[FloatArray] = field(default_factory=list)
    covered: list[FloatArray] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class FamilyData:
    """One family's CPU matrix and where its time starts (for the calendar)."""

    name: str
    cpu: FloatArray
    step_s: float
    epoch_s: float


def load_family(family: str, settings: Settings) -> FamilyData:
    """Load a family's default subset as float64 CPU utilisation with its start epoch.

    PlanetLab days start at 00:00 UTC of the folder's date; Bitbrains carries its epoch; the Azure
    V1 sample's step 0 has no date, so it is taken as 00:00 of an arbitrary day (hour-of-day is then
    right only if the sample starts at midnight, and day-of-week is nominal).
    """
    from scenarios.traces.families import DEFAULT_SUBSETS, load_trace

    trace = load_trace(family, None, settings.trace_roots, cache_dir=settings.cache_dir)
    if family == "planetlab":
        epoch = planetlab_day_epoch(DEFAULT_SUBSETS["planetlab"])
    elif family == "bitbrains":
        epoch = float(trace.extra.get("origin_epoch_s", 0.0))
    else:
        epoch = 0.0
    return FamilyData(trace.name, trace.cpu_util.astype(np.float64), trace.step_s, epoch)


LstmSource = Callable[[str, bool, FloatArray, Exogenous | None, np.random.Generator], Any]


def run_backtest(
    config: BacktestConfig,
    data: dict[str, FamilyData],
    *,
    lstm_dir_in: Path | None = None,
    lstm_dir_out: Path | None = None,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> pd.DataFrame:
    """Run the backtest over ``data`` (family -> loaded trace) and return the long result table.

    Columns: family, forecaster, exog, horizon, mae, rmse, mase, coverage, n, fit_forecast_s.
    """
    config.check()
    max_h = max(config.horizons)
    rows: list[dict[str, Any]] = []
    family_rngs = np.random.default_rng(config.seed).spawn(len(config.families))
    for family, rng in zip(config.families, family_rngs, strict=True):
        fam = data[family]
        n_all, t_all = fam.cpu.shape
        order = rng.permutation(n_all)
        n_train = min(config.n_train_series, n_all // 2)
        train_rows, test_rows = order[:n_train], order[n_train : n_train + config.n_series]
        train_end = int(t_all * config.train_fraction)
        if t_all - max_h <= train_end:
            raise ForecastInputError("horizons", f"{max_h} steps leave no test time in {fam.name} ({t_all} steps)")
        origins = np.unique(np.linspace(train_end, t_all - max_h, config.n_origins).astype(int))
        shortest = int(min(origins.min(), config.history_steps))
        cycles = covered_cycles(shortest * fam.step_s)
        calendar = calendar_features(fam.epoch_s, fam.step_s, t_all, cycles)
        variants = [(name, False) for name in config.forecasters]
        if config.with_exog and cycles:
            variants += [(name, True) for name in config.forecasters if name in EXOG_CAPABLE]
        elif config.with_exog:
            log(f"{family}: no calendar run: {shortest} steps of history cover no full day")
        lstms = {}
        for name, with_exog in variants:
            if name == "lstm":
                lstms[with_exog] = _lstm_model(
                    family, with_exog, fam.cpu[train_rows, :train_end], calendar.rows(0, train_end), config,
                    rng, lstm_dir_in, lstm_dir_out, log,
                )  # fmt: skip
        totals = {v: _Totals() for v in variants}
        for origin in origins:
            start = max(0, origin - config.history_steps)
            history = fam.cpu[test_rows, start:origin]
            actual = fam.cpu[test_rows, origin : origin + max_h]
            scale = np.repeat(mase_scale(history, SEASON_STEPS)[:, None], max_h, axis=1)
            exog = calendar.rows(start, origin + max_h)
            for name, with_exog in variants:
                forecaster = _build(name, with_exog, config, lstms)
                began = time.perf_counter()
                forecaster.fit(history, exog if with_exog else None)
                fc = forecaster.forecast(max_h, config.level)
                cell = totals[(name, with_exog)]
                cell.seconds += time.perf_counter() - began
                err = fc.mean - actual
                cell.abs_err.append(np.abs(err))
                cell.sq_err.append(err**2)
                cell.scale.append(np.where(np.isnan(err), np.nan, scale))
                inside = (actual >= fc.lower) & (actual <= fc.upper)
                cell.covered.append(np.where(np.isnan(actual) | np.isnan(fc.mean), np.nan, inside))
        for (name, with_exog), cell in totals.items():
            stacked = {k: np.vstack(getattr(cell, k)) for k in ("abs_err", "sq_err", "scale", "covered")}
            for h in config.horizons:
                col = h - 1
                with np.errstate(invalid="ignore"):
                    rows.append(
                        {
                            "family": family,
                            "forecaster": name,
                            "exog": "+".join(cycles) if with_exog else "none",
                            "horizon": h,
                            "mae": float(np.nanmean(stacked["abs_err"][:, col])),
                            "rmse": float(np.sqrt(np.nanmean(stacked["sq_err"][:, col]))),
                            "mase": _mase(stacked["abs_err"][:, col], stacked["scale"][:, col]),
                            "coverage": float(np.nanmean(stacked["covered"][:, col])),
                            "n": int(np.isfinite(stacked["abs_err"][:, col]).sum()),
                            "fit_forecast_s": round(cell.seconds, 3),
                        }
                    )
            log(f"{family}: {name}{' + calendar' if with_exog else ''} done ({cell.seconds:.1f} s)")
    return pd.DataFrame(rows)


def _mase(abs_err: FloatArray, scale: FloatArray) -> float:
    """Fleet-level MASE: mean absolute error over mean in-sample scale, on cells where both exist."""
    both = np.isfinite(abs_err) & np.isfinite(scale)
    denominator = scale[both].mean() if both.any() else np.nan
    return float(abs_err[both].mean() / denominator) if denominator > 0 else float("nan")


def _build(name: str, with_exog: bool, config: BacktestConfig, lstms: dict[bool, Any]) -> Forecaster:
    """A fresh forecaster for one origin (no state carried between origins)."""
    if name == "lstm":
        from policies.forecast_lstm import LstmForecaster

        return LstmForecaster(model=lstms[with_exog])
    if name == "seasonal_naive":
        return make_forecaster(name, {"season": SEASON_STEPS})
    if name == "arima":
        return make_forecaster(name, {"order": config.arima_order})
    return make_forecaster(name)


def lstm_artefact_name(family: str, with_exog: bool) -> str:
    """File name of a family's LSTM artefact (``lstm-bitbrains-calendar.pt``)."""
    return f"lstm-{family}{'-calendar' if with_exog else ''}.pt"


def _lstm_model(
    family: str,
    with_exog: bool,
    train: FloatArray,
    calendar: Exogenous,
    config: BacktestConfig,
    rng: np.random.Generator,
    dir_in: Path | None,
    dir_out: Path | None,
    log: Callable[[str], None],
) -> Any:
    """Load the family's LSTM from ``dir_in`` or train it on training instances x training time."""
    import torch

    from policies.forecast_lstm import LstmConfig, LstmModel, train_lstm

    max_h = max(config.horizons)
    name = lstm_artefact_name(family, with_exog)
    if dir_in is not None:
        model = LstmModel.load(dir_in / name)
        if model.config.horizon < max_h:
            raise ForecastInputError(
                "horizons", f"{max_h} exceeds the loaded LSTM's horizon {model.config.horizon} ({dir_in / name})"
            )
        return model
    torch.set_num_threads(1)
    began = time.perf_counter()
    model = train_lstm(
        train,
        rng=rng,
        exog=calendar if with_exog else None,
        config=LstmConfig(window=48, horizon=max_h, hidden=32),
        steps=config.lstm_steps,
    )
    seconds = time.perf_counter() - began
    log(f"{family}: trained {name} on {train.shape[0]} series x {train.shape[1]} steps ({seconds:.1f} s)")
    if dir_out is not None:
        model.save(dir_out / name)
    return model


def to_markdown(table: pd.DataFrame, horizons: Sequence[int]) -> str:
    """Pivot the long table: one row per (family, forecaster, exog), MASE/MAE/RMSE per horizon."""
    header = ["family", "forecaster", "exog"]
    for metric in ("MASE", "MAE", "RMSE"):
        header += [f"{metric} h={h}" for h in horizons]
    header += ["cover95 h=1", "fit+fc s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]
    for (family, name, exog), group in table.groupby(["family", "forecaster", "exog"], sort=False):
        by_h = group.set_index("horizon")
        cells = [str(family), str(name), str(exog)]
        for metric in ("mase", "mae", "rmse"):
            cells += [f"{by_h.loc[h, metric]:.3f}" for h in horizons]
        cells += [f"{by_h.loc[horizons[0], 'coverage']:.2f}", f"{group['fit_forecast_s'].iloc[0]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: Path) -> Path:
    """MASE by horizon, one panel per family, one line per forecaster (dashed: with calendar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(table["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 4), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        part = table[table["family"] == family]
        for (name, exog), group in part.groupby(["forecaster", "exog"], sort=False):
            ax.plot(group["horizon"], group["mase"], marker="o", linestyle="--" if exog != "none" else "-",
                    label=f"{name}{' + cal' if exog != 'none' else ''}")  # fmt: skip
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_title(family)
        ax.set_xlabel("horizon (steps of 5 min)")
        ax.set_ylabel("MASE")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(table: pd.DataFrame, config: BacktestConfig, folder: Path, *, with_plot: bool) -> str:
    """Write the CSV, the markdown and (optionally) the plot; return the markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / CSV_NAME, index=False)
    markdown = to_markdown(table, list(config.horizons))
    (folder / MARKDOWN_NAME).write_text(markdown + "\n", encoding="utf-8")
    if with_plot:
        plot(table, folder / PLOT_NAME)
    return markdown
