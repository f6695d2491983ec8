"""Backtest on a scenario's demand *after* event injection, to see whether declared events help.

``mirrortwin forecast-eval --scenario bitbrains-campaign`` builds the scenario's population exactly as
a run of the twin does (same seed, so the same instances, the same random maintenance fraction and the
real effects injected), then backtests forecasters on that demand with what the policy could know:

* ``none``: history only;
* ``calendar``: hour-of-day / day-of-week columns (regression-capable forecasters only);
* ``events``: the declared schedule as exogenous columns per event kind, over history and horizon,
  instances grouped by the events that concern them (:func:`policies.event_inputs.exog_groups`, the
  function the predictive policy uses);
* ``calendar+events``: both;
* ``events-scaled``: history divided by the declared multiplier, forecast multiplied by it
  (:func:`policies.event_inputs.declared_scaling`; any forecaster).

Forecasters never see the actual multipliers or ramps. Protocol, as in :mod:`mirrortwin.forecast_eval`:
a seeded choice of test instances; the first ``train_fraction`` of the run is training time (nothing
is trained on it here: every forecaster is fitted at each origin on the ``history_steps`` before it,
with fixed parameters, so nothing is tuned on the test part); origins are spread evenly over the test
time, plus ``n_event_origins`` spread over each declared event window that falls in the test time (from
``max horizon`` steps before its start to its end), because that is where declared events can help and
evenly spread origins rarely land there. The origins depend only on the declared schedule.

Errors are reported by horizon for four sets of forecast targets: ``change`` (the declared multiplier
at the target differs from the one at the newest history sample: an event starts or ends in between,
which no forecaster can know from history alone), ``event`` (targets inside a declared window that
concerns the instance), ``rest`` (every other target) and ``all``. Forecast means are held to
``[0, ceiling]``, ceiling = 1 or the highest utilisation in the history (a VM cannot use more than its
size; the predictive policy clips the same way). MASE is fleet-level, as in the
trace backtest (mean absolute error over mean in-sample seasonal-naive error of the same history).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mirrortwin.config import Settings
from policies.event_inputs import declared_scaling, deflate, exog_groups, grid_times, inflate
from policies.forecasting import (
    Exogenous,
    FloatArray,
    Forecast,
    ForecastInputError,
    calendar_features,
    covered_cycles,
    make_forecaster,
    mase_scale,
)
from policies.scheduled_events import ScheduledEvent, declared_multipliers

SEASON_STEPS = 288
FORECASTERS: tuple[str, ...] = ("naive", "seasonal_naive", "arima")
EXOG_CAPABLE: frozenset[str] = frozenset({"arima", "auto_arima"})
VARIANTS: tuple[str, ...] = ("none", "calendar", "events", "calendar+events", "events-scaled")
WINDOWS: tuple[str, ...] = ("change", "event", "rest", "all")


@dataclass(frozen=True)
class EventBacktestConfig:
    """What to backtest on a scenario with declared events.

    Attributes:
        scenario: Catalogue name or path of the scenario.
        forecasters: Forecasters (naive, seasonal_naive, local_regression, arima, auto_arima).
        horizons: Steps ahead reported.
        n_series: Test instances (a seeded choice among the scenario's instances).
        n_origins: Origins spread evenly over the test time.
        n_event_origins: Extra origins spread over each declared event window in the test time.
        history_steps: Steps of history each forecast is fitted on (at most).
        train_fraction: Share of the run that is training time (no origin falls in it).
        seed: Seed of the choice of test instances.
        level: Interval coverage asked for.
        arima_order: Order of the fixed-order ARIMA.
        overrides: ``--set`` overrides applied to the scenario.
    """

    scenario: str
    forecasters: tuple[str, ...] = FORECASTERS
    horizons: tuple[int, ...] = (1, 3, 6, 12)
    n_series: int = 16
    n_origins: int = 6
    n_event_origins: int = 4
    history_steps: int = 576
    train_fraction: float = 0.5
    seed: int = 0
    level: float = 0.95
    arima_order: tuple[int, int, int] = (1, 0, 1)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ForecastInputError` naming the first bad field."""
        known = ("naive", "seasonal_naive", "local_regression", "arima", "auto_arima")
        unknown = [f for f in self.forecasters if f not in known]
        if unknown or not self.forecasters:
            raise ForecastInputError(
                "forecasters", f"with --scenario choose from {', '.join(known)}; got {list(self.forecasters)}"
            )
        if not self.horizons or min(self.horizons) < 1:
            raise ForecastInputError("horizons", f"must be positive steps, got {list(self.horizons)}")
        for name in ("n_series", "n_origins", "history_steps"):
            if getattr(self, name) < 1:
                raise ForecastInputError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.n_event_origins < 0:
            raise ForecastInputError("n_event_origins", f"must be at least 0, got {self.n_event_origins}")
        if not 0.1 <= self.train_fraction <= 0.9:
            raise ForecastInputError("train_fraction", f"must be in [0.1, 0.9], got {self.train_fraction}")


@dataclass(frozen=True)
class ScenarioDemand:
    """A scenario's CPU demand after event injection, with its declared schedule.

    Attributes:
        name: Scenario name.
        instance_ids: One per row of ``cpu``.
        cpu: Utilisation (instances x steps) as the twin replays it (real event effects included).
        step_s: Grid step.
        epoch_s: Epoch seconds (UTC) of step 0, for the calendar.
        events: The declared schedule, in run time (step ``k`` is at ``k * step_s``).
    """

    name: str
    instance_ids: tuple[str, ...]
    cpu: FloatArray
    step_s: float
    epoch_s: float
    events: tuple[ScheduledEvent, ...]


def load_scenario_demand(config: EventBacktestConfig, settings: Settings) -> ScenarioDemand:
    """Build the scenario's population as a twin run would (same seed stream) and take its demand."""
    from mirrortwin.wiring import make_population, seed_streams
    from scenarios.catalogue import resolve_scenario
    from sim.adapters import declared_schedule

    spec = resolve_scenario(config.scenario, dict(config.overrides))
    population_rng, _ = seed_streams(spec.seed)
    population = make_population(spec, settings, population_rng)
    cpu = np.asarray(population.demand.cpu_util[:, : spec.n_steps], dtype=np.float64)
    epoch = float(population.demand.extra.get("origin_epoch_s", 0.0)) + spec.start_offset_s
    events = declared_schedule(spec, population)
    return ScenarioDemand(spec.name, population.instance_ids, cpu, spec.step_s, epoch, events)


@dataclass
class _Cell:
    """Errors of one (forecaster, variant) across origins, stacked at the end."""

    abs_err: list[FloatArray] = field(default_factory=list)
    sq_err: list[FloatArray] = field(default_factory=list)
    scale: list[FloatArray] = field(default_factory=list)
    covered: list[FloatArray] = field(default_factory=list)
    in_event: list[FloatArray] = field(default_factory=list)
    changed: list[FloatArray] = field(default_factory=list)
    seconds: float = 0.0


def choose_origins(data: ScenarioDemand, config: EventBacktestConfig) -> npt.NDArray[np.int64]:
    """Forecast origins: evenly over the test time, plus over each declared window in it."""
    max_h = max(config.horizons)
    t_all = data.cpu.shape[1]
    train_end = int(t_all * config.train_fraction)
    last = t_all - max_h
    if last <= train_end:
        raise ForecastInputError("horizons", f"{max_h} steps leave no test time in {data.name} ({t_all} steps)")
    origins = [np.linspace(train_end, last, config.n_origins).astype(np.int64)]
    for event in data.events:
        first = int(np.ceil(event.start_s / data.step_s)) - max_h + 1
        end = int(np.ceil(event.end_s / data.step_s))
        lo, hi = max(first, train_end), min(end - 1, last)
        if config.n_event_origins and hi >= lo:
            origins.append(np.linspace(lo, hi, config.n_event_origins).astype(np.int64))
    return np.unique(np.concatenate(origins))


def run_event_backtest(
    config: EventBacktestConfig,
    data: ScenarioDemand,
    *,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> pd.DataFrame:
    """Backtest every (forecaster, variant) on ``data``; return the long table.

    Columns: scenario, forecaster, exog, window, horizon, mae, rmse, mase, coverage, n, fit_forecast_s.
    """
    config.check()
    max_h = max(config.horizons)
    n_all = data.cpu.shape[0]
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.permutation(n_all)[: min(config.n_series, n_all)])
    ids = tuple(data.instance_ids[i] for i in rows)
    origins = choose_origins(data, config)
    shortest = int(min(origins.min(), config.history_steps))
    cycles = covered_cycles(shortest * data.step_s)
    variants = [
        (name, variant)
        for name in config.forecasters
        for variant in VARIANTS
        if variant in ("none", "events-scaled") or (name in EXOG_CAPABLE and (cycles or "calendar" not in variant))
    ]
    if not cycles:
        log(f"{data.name}: no calendar variants: {shortest} steps of history cover no full day")
    log(f"{data.name}: {len(ids)} series, {origins.size} origins, {len(data.events)} declared events")
    cells = {v: _Cell() for v in variants}
    for origin in origins.tolist():
        start = max(0, origin - config.history_steps)
        history = data.cpu[rows, start:origin]
        actual = data.cpu[rows, origin : origin + max_h]
        n_hist = history.shape[1]
        now_s = (origin - 1) * data.step_s
        scale = np.repeat(mase_scale(history, SEASON_STEPS)[:, None], max_h, axis=1)
        times = grid_times(now_s, data.step_s, 1, max_h)
        declared = declared_multipliers(data.events, ids, times)
        in_event = declared[:, 1:] != 1.0
        changed = declared[:, 1:] != declared[:, :1]
        # Utilisation cannot exceed the instance's size (1, or what the trace itself showed above 1):
        # every forecast is held to that, as the predictive policy does.
        ceiling = np.maximum(1.0, np.nanmax(history, axis=1, initial=0.0))[:, None]
        for name, variant in variants:
            began = time.perf_counter()
            fc = _forecast(name, variant, history, data, ids, now_s, n_hist, max_h, cycles, config)
            fc = Forecast(np.clip(fc.mean, 0.0, ceiling), fc.lower, fc.upper, fc.level)
            cell = cells[(name, variant)]
            cell.seconds += time.perf_counter() - began
            err = fc.mean - actual
            cell.abs_err.append(np.abs(err))
            cell.sq_err.append(err**2)
            cell.scale.append(np.where(np.isnan(err), np.nan, scale))
            inside = (actual >= fc.lower) & (actual <= fc.upper)
            cell.covered.append(np.where(np.isnan(fc.mean), np.nan, inside))
            cell.in_event.append(in_event)
            cell.changed.append(changed)
    out: list[dict[str, Any]] = []
    for (name, variant), cell in cells.items():
        keys = ("abs_err", "sq_err", "scale", "covered", "in_event", "changed")
        stacked = {k: np.vstack(getattr(cell, k)) for k in keys}
        for window in WINDOWS:
            for h in config.horizons:
                col = h - 1
                mask = stacked["in_event"][:, col].astype(bool)
                picks = {"change": stacked["changed"][:, col].astype(bool), "event": mask, "rest": ~mask}
                pick = picks.get(window, np.ones_like(mask))
                out.append(_row(data.name, name, variant, window, h, stacked, col, pick, cell.seconds))
        log(f"{data.name}: {name} / {variant} done ({cell.seconds:.1f} s)")
    return pd.DataFrame(out)


def _row(
    scenario: str,
    name: str,
    variant: str,
    window: str,
    h: int,
    stacked: dict[str, FloatArray],
    col: int,
    pick: Any,
    seconds: float,
) -> dict[str, Any]:
    abs_err = stacked["abs_err"][pick, col]
    scale = stacked["scale"][pick, col]
    both = np.isfinite(abs_err) & np.isfinite(scale)
    with np.errstate(invalid="ignore"):
        mae = float(np.nanmean(abs_err)) if abs_err.size else float("nan")
        rmse = float(np.sqrt(np.nanmean(stacked["sq_err"][pick, col]))) if abs_err.size else float("nan")
        coverage = float(np.nanmean(stacked["covered"][pick, col])) if abs_err.size else float("nan")
        denominator = scale[both].mean() if both.any() else np.nan
        mase = float(abs_err[both].mean() / denominator) if denominator > 0 else float("nan")
    return {
        "scenario": scenario,
        "forecaster": name,
        "exog": variant,
        "window": window,
        "horizon": h,
        "mae": mae,
        "rmse": rmse,
        "mase": mase,
        "coverage": coverage,
        "n": int(both.sum()),
        "fit_forecast_s": round(seconds, 3),
    }


def _forecast(
    name: str,
    variant: str,
    history: FloatArray,
    data: ScenarioDemand,
    ids: Sequence[str],
    now_s: float,
    n_hist: int,
    max_h: int,
    cycles: tuple[str, ...],
    config: EventBacktestConfig,
) -> Forecast:
    """One forecast of every test series at one origin, with what ``variant`` lets it know."""
    step = data.step_s
    if variant == "events-scaled":
        past, future = declared_scaling(data.events, ids, now_s=now_s, step_s=step, n_history=n_hist, horizon=max_h)
        base = _build(name, config).fit(deflate(history, past)).forecast(max_h, config.level)
        return inflate(base, future)
    if variant == "none":
        return _build(name, config).fit(history).forecast(max_h, config.level)
    if variant == "calendar":
        start = now_s - data.step_s * (n_hist - 1)
        exog: Exogenous = calendar_features(data.epoch_s + start, data.step_s, n_hist + max_h, cycles)
        return _build(name, config).fit(history, exog).forecast(max_h, config.level)
    groups = exog_groups(
        data.events,
        ids,
        now_s=now_s,
        step_s=step,
        n_history=n_hist,
        horizon=max_h,
        calendar=variant == "calendar+events",
        calendar_epoch_s=data.epoch_s,
    )
    shape = (len(ids), max_h)
    mean, lower, upper = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for group in groups:
        part = _build(name, config).fit(history[group.rows], group.exog).forecast(max_h, config.level)
        mean[group.rows], lower[group.rows], upper[group.rows] = part.mean, part.lower, part.upper
    return Forecast(mean, lower, upper, config.level)


def _build(name: str, config: EventBacktestConfig) -> Any:
    """A fresh forecaster with the same fixed parameters as the trace backtest."""
    if name == "seasonal_naive":
        return make_forecaster(name, {"season": SEASON_STEPS})
    if name == "arima":
        return make_forecaster(name, {"order": config.arima_order})
    return make_forecaster(name)


def to_markdown(table: pd.DataFrame, horizons: Sequence[int]) -> str:
    """One row per (forecaster, exog), MASE by horizon at changes, in the event windows, outside, overall."""
    header = ["forecaster", "exog"]
    for window in WINDOWS:
        header += [f"MASE {window} h={h}" for h in horizons]
    header += ["n change h=1", "n event h=1", "fit+fc s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    for (name, variant), group in table.groupby(["forecaster", "exog"], sort=False):
        by = group.set_index(["window", "horizon"])
        cells = [str(name), str(variant)]
        for window in WINDOWS:
            cells += [f"{by.loc[(window, h), 'mase']:.3f}" for h in horizons]
        cells += [str(int(by.loc[(w, horizons[0]), "n"])) for w in ("change", "event")]
        cells.append(f"{group['fit_forecast_s'].iloc[0]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = [
    "EventBacktestConfig",
    "ScenarioDemand",
    "choose_origins",
    "load_scenario_demand",
    "run_event_backtest",
    "to_markdown",
]
