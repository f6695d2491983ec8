"""Turn the declared schedule (and optionally the calendar) into what a forecaster can use.

Two ways a forecast can take a declared event into account, both built only from the declaration
(:class:`~policies.scheduled_events.ScheduledEvent`):

* **As exogenous input** (:func:`exog_groups`): a regression-capable forecaster (ARIMA with
  regressors) gets one column per event *kind* (``campaign``, ``maintenance``, ``seasonal_peak``)
  holding ``declared multiplier - 1`` inside the window, over the history *and* the horizon, and
  learns per series how much demand moves per unit of declared effect. Columns are per kind, not per
  event, so what a series learned from last week's campaign applies to this week's. An exogenous
  matrix is shared by all the series it is given with, while an event concerns only some instances;
  so instances are grouped by the set of events that concern them, and each group gets its own
  matrix (and, in the policy, its own fitted forecaster).
* **As a declared scaling** (:func:`declared_scaling`): divide the history by the declared
  multiplier in force at each sample (a maintenance window declared at 0 makes those samples
  unknown), forecast the baseline, multiply the forecast by the declared multiplier of each horizon
  step. It needs no learning, so it helps from the very first event and with any forecaster, and it
  is exactly as good as the declaration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from policies.forecasting import Exogenous, Forecast, calendar_features, covered_cycles, event_features
from policies.scheduled_events import ScheduledEvent, declared_multipliers

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ExogGroup:
    """Instances that share one exogenous matrix.

    Attributes:
        key: Indices (into the declared events) of the events that concern these instances; ``()``
            for instances no event concerns.
        rows: The instances (row indices of the fleet).
        exog: Their inputs over history + horizon, or ``None`` when there is nothing to feed.
    """

    key: tuple[int, ...]
    rows: IntArray
    exog: Exogenous | None


def grid_times(now_s: float, step_s: float, n_history: int, horizon: int) -> FloatArray:
    """Times of the history columns (the newest at ``now_s``) followed by the ``horizon`` steps ahead."""
    return now_s + step_s * np.arange(-(n_history - 1), horizon + 1, dtype=np.float64)


def exog_groups(
    events: Sequence[ScheduledEvent],
    instance_ids: Sequence[str],
    *,
    now_s: float,
    step_s: float,
    n_history: int,
    horizon: int,
    calendar: bool = False,
    calendar_epoch_s: float = 0.0,
) -> list[ExogGroup]:
    """Group instances by the events that concern them and build each group's inputs.

    Args:
        events: The declared schedule.
        instance_ids: The fleet's instances, in row order.
        now_s: Time of the newest history column (same clock as the events).
        step_s: Time between history columns, also the forecast step.
        n_history: History columns.
        horizon: Forecast steps the inputs must also cover.
        calendar: Add hour-of-day / day-of-week columns (only the cycles the history covers).
        calendar_epoch_s: Epoch seconds (UTC) of time 0 of the events' clock (0: the clock is epoch
            time already; the twin's clock starts at 0 at the start of the run).

    Returns:
        Groups in order of their first instance; together they cover every instance once.
    """
    n = len(instance_ids)
    rows_total = n_history + horizon
    start = now_s - step_s * (n_history - 1)
    members = np.stack([e.touches(instance_ids) for e in events], axis=0) if events else np.zeros((0, n), bool)
    cal: Exogenous | None = None
    if calendar:
        cycles = covered_cycles(n_history * step_s)
        if cycles:
            cal = calendar_features(calendar_epoch_s + start, step_s, rows_total, cycles)
    if n == 0:
        return []
    signature = np.packbits(members.T, axis=1) if len(events) else np.zeros((n, 1), np.uint8)
    _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    groups: list[ExogGroup] = []
    for g in np.argsort(first, kind="stable").tolist():
        rows = np.flatnonzero(inverse.reshape(-1) == g)
        key = tuple(np.flatnonzero(members[:, rows[0]]).tolist())
        exog = cal
        if key:
            by_kind = [replace(events[k], name=events[k].kind or events[k].name) for k in key]
            ev = event_features(by_kind, start, step_s, rows_total)
            exog = ev if exog is None else exog.concat(ev)
        groups.append(ExogGroup(key, rows.astype(np.int64), exog))
    return groups


def declared_scaling(
    events: Sequence[ScheduledEvent],
    instance_ids: Sequence[str],
    *,
    now_s: float,
    step_s: float,
    n_history: int,
    horizon: int,
) -> tuple[FloatArray, FloatArray]:
    """The declared multiplier of every instance over the history and over the horizon.

    Returns:
        ``(past, future)``: shapes (instances, n_history) and (instances, horizon).
    """
    times = grid_times(now_s, step_s, n_history, horizon)
    multipliers = declared_multipliers(events, instance_ids, times)
    return multipliers[:, :n_history], multipliers[:, n_history:]


def deflate(history: FloatArray, past: FloatArray) -> FloatArray:
    """History with the declared effect taken out; NaN where the declaration was "no demand" (x0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(past > 0.0, history / np.where(past > 0.0, past, 1.0), np.nan)


def inflate(forecast: Forecast, future: FloatArray) -> Forecast:
    """A baseline forecast with the declared effect of each horizon step put back (mean and interval)."""
    return Forecast(forecast.mean * future, forecast.lower * future, forecast.upper * future, forecast.level)


__all__ = ["ExogGroup", "declared_scaling", "deflate", "exog_groups", "grid_times", "inflate"]
