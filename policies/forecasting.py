"""Demand forecasters behind one interface, for many series at once, in the twin and live alike.

A predictive policy needs, for every instance, the expected load a few control steps ahead *and* how
sure that expectation is (an overload probability comes from the interval, not from the mean). So
every forecaster here answers the same two calls on a whole fleet at once:

* ``fit(history, exog=None)``: learn from a (series x time) matrix, oldest sample first, NaN where
  a sample is missing or the instance is younger than the window (leading NaN);
* ``forecast(h, level=0.95)``: a :class:`Forecast` with the mean and a central prediction interval
  at ``level`` for the next ``h`` steps of every series.

``observe(history, exog=None)`` conditions an already fitted forecaster on newer data without
re-estimating its parameters: that is the per-control-step path (refit every hour, observe every
step), and the one the speed target of issue 5 is about.

Exogenous inputs (:class:`Exogenous`) are shared by all series: calendar features derived from
timestamps and the *declared* schedule of events, as a (time x k) matrix whose rows cover the history
and then the horizon. Forecasters that can use them (``uses_exog``) do; the others ignore them, so a
caller can pass the same inputs to every forecaster.

Rows with no observation at all forecast NaN; every other row gets a finite forecast. A forecaster
that needs more history than a row has falls back to the naive forecast for that row (the way
CloudSim's dynamic detectors fall back to a static threshold while history is short).

Nothing here knows whether it runs in the twin: the same objects serve the live controller.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

from policies.errors import PolicyConfigError
from policies.overload_detectors import REGRESSION_WINDOW, cloudsim_weighted_line, tricube_weights
from policies.scheduled_events import ScheduledEvent

FloatArray = npt.NDArray[np.float64]

FORECASTER_LOCATION = "forecaster"
"""Configuration path errors of this module are reported under."""


class ForecastInputError(PolicyConfigError):
    """Bad input to a forecaster (shape, horizon, exogenous matrix); names the field at fault."""

    def __init__(self, field_name: str, problem: str, forecaster: str = "") -> None:
        location = f"{FORECASTER_LOCATION}.{forecaster}" if forecaster else FORECASTER_LOCATION
        super().__init__(field_name, problem, location)


@dataclass(frozen=True)
class Forecast:
    """Forecasts for many series: the mean and a central prediction interval.

    Attributes:
        mean: Expected value, shape (series, h).
        lower: Lower bound of the central ``level`` interval, same shape.
        upper: Upper bound, same shape; ``lower <= mean <= upper`` wherever finite.
        level: Coverage the interval aims at, in (0, 1).
    """

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray
    level: float

    @property
    def horizon(self) -> int:
        """Number of steps forecast."""
        return int(self.mean.shape[1])


@dataclass(frozen=True)
class Exogenous:
    """Inputs shared by every series, one row per time step: history first, then the horizon.

    Attributes:
        values: Shape (history_steps + future_steps, k).
        names: One name per column (checked against what a trained model expects).
    """

    values: FloatArray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        """Check the matrix is 2-D with one name per column."""
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ForecastInputError(
                "exog", f"values must be (time x {len(self.names)}) for names {self.names}, got {self.values.shape}"
            )
        if not np.isfinite(self.values).all():
            raise ForecastInputError("exog", "values must be finite (declare no-event as 0, not NaN)")

    @property
    def n_features(self) -> int:
        """Number of columns ``k``."""
        return len(self.names)

    def concat(self, other: Exogenous) -> Exogenous:
        """Return both inputs side by side (same rows)."""
        if other.values.shape[0] != self.values.shape[0]:
            raise ForecastInputError("exog", f"cannot join {self.values.shape[0]} rows with {other.values.shape[0]}")
        return Exogenous(np.hstack([self.values, other.values]), self.names + other.names)

    def rows(self, start: int, stop: int) -> Exogenous:
        """Return rows ``start:stop`` (e.g. a shorter history window with its horizon)."""
        return Exogenous(self.values[start:stop], self.names)


def calendar_features(
    start_epoch_s: float, step_s: float, n_steps: int, cycles: Sequence[str] = ("day", "week")
) -> Exogenous:
    """Hour-of-day and day-of-week as sine/cosine pairs for ``n_steps`` grid points (UTC).

    Why sine/cosine: 23:55 and 00:00 are neighbours, and two smooth columns per cycle are all a
    linear model (ARIMA's regression) needs for a daily shape's first harmonic; the second daily
    harmonic lets it bend the curve (a business day's plateau).

    Pass only the ``cycles`` the history covers at least once: over part of a cycle a sine is
    nearly a trend, and a regression fitted on it extrapolates that trend into the horizon.

    Args:
        start_epoch_s: Epoch seconds (UTC) of step 0.
        step_s: Grid step.
        n_steps: Rows (history and horizon).
        cycles: Any of ``day`` (four columns) and ``week`` (two columns).
    """
    unknown = set(cycles) - {"day", "week"}
    if unknown:
        raise ForecastInputError("cycles", f"unknown {sorted(unknown)}; use day and/or week")
    t = start_epoch_s + step_s * np.arange(n_steps, dtype=np.float64)
    day = 2.0 * np.pi * (t % 86400.0) / 86400.0
    week = 2.0 * np.pi * (t % (7 * 86400.0)) / (7 * 86400.0)
    columns: list[FloatArray] = []
    names: list[str] = []
    if "day" in cycles:
        columns += [np.sin(day), np.cos(day), np.sin(2 * day), np.cos(2 * day)]
        names += ["hod_sin", "hod_cos", "hod2_sin", "hod2_cos"]
    if "week" in cycles:
        columns += [np.sin(week), np.cos(week)]
        names += ["dow_sin", "dow_cos"]
    values = np.column_stack(columns) if columns else np.zeros((n_steps, 0))
    return Exogenous(values, tuple(names))


def covered_cycles(history_s: float) -> tuple[str, ...]:
    """The calendar cycles a history of ``history_s`` seconds covers at least once."""
    return tuple(name for name, period in (("day", 86400.0), ("week", 7 * 86400.0)) if history_s >= period)


def event_features(events: Sequence[ScheduledEvent], start_epoch_s: float, step_s: float, n_steps: int) -> Exogenous:
    """The declared events as a (time x events) matrix on the grid; events with one name share a column."""
    t = start_epoch_s + step_s * np.arange(n_steps, dtype=np.float64)
    names = tuple(dict.fromkeys(e.name for e in events))
    values = np.zeros((n_steps, len(names)))
    for event in events:
        if not event.end_s > event.start_s:
            raise ForecastInputError(
                f"events.{event.name}", f"end_s {event.end_s} must be after start_s {event.start_s}"
            )
        inside = (t >= event.start_s) & (t < event.end_s)
        values[inside, names.index(event.name)] += event.multiplier - 1.0
    return Exogenous(values, names)


def planetlab_day_epoch(day: str) -> float:
    """Epoch seconds of 00:00 UTC on a PlanetLab day folder name such as ``20110303``."""
    return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp()


class Forecaster(Protocol):
    """What every forecaster offers: fit on a fleet's history, forecast all of it at once."""

    name: str
    uses_exog: bool

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Learn from ``history`` (series x time, NaN allowed); returns ``self``."""
        ...

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Condition on newer ``history`` with the parameters already learned; returns ``self``."""
        ...

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """Forecast the next ``h`` steps of every series with a central ``level`` interval."""
        ...


# --------------------------------------------------------------------------- shared helpers


def check_history(history: npt.ArrayLike, forecaster: str) -> FloatArray:
    """Return ``history`` as a float64 (series x time) matrix, or raise naming the problem."""
    array = np.asarray(history, dtype=np.float64)
    if array.ndim != 2:
        raise ForecastInputError(
            "history", f"expected a 2-D array (series x time), got shape {array.shape}", forecaster
        )
    if array.shape[1] == 0:
        raise ForecastInputError("history", "has no time steps", forecaster)
    if np.isinf(array).any():
        raise ForecastInputError("history", "contains inf; mark missing samples as NaN", forecaster)
    return array


def check_level(level: float, forecaster: str) -> float:
    """Return ``level`` if it is in (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ForecastInputError("level", f"must be in (0, 1), got {level}", forecaster)
    return float(level)


def check_horizon(h: int, forecaster: str, limit: int | None = None) -> int:
    """Return ``h`` if it is a positive integer (and at most ``limit``)."""
    if int(h) != h or h < 1:
        raise ForecastInputError("h", f"must be a positive integer, got {h}", forecaster)
    if limit is not None and h > limit:
        raise ForecastInputError("h", f"{h} is beyond what this forecaster can give ({limit})", forecaster)
    return int(h)


def z_value(level: float) -> float:
    """Standard normal quantile for a central interval of coverage ``level``."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def forward_fill(history: FloatArray) -> FloatArray:
    """Fill each NaN with the row's last earlier observation; leading NaN take the first observation.

    Rows with no observation stay NaN. Why forward fill: a missing sample at the end is best
    replaced by what was last seen, which is also what a live controller knows.
    """
    t = history.shape[1]
    observed = ~np.isnan(history)
    index = np.where(observed, np.arange(t)[None, :], -1)
    np.maximum.accumulate(index, axis=1, out=index)
    first = np.argmax(observed, axis=1)
    index = np.where(index < 0, first[:, None], index)
    return np.take_along_axis(history, index, axis=1)


def last_observed(history: FloatArray) -> FloatArray:
    """The newest non-NaN value of each row (NaN for a row with none)."""
    return forward_fill(history)[:, -1]


def _nan_std(values: FloatArray) -> FloatArray:
    """Row-wise standard deviation ignoring NaN; 0 where fewer than two values exist."""
    count = (~np.isnan(values)).sum(axis=1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(values, axis=1, ddof=1)
    return np.where(count >= 2, std, 0.0)


def normal_interval(mean: FloatArray, sigma: FloatArray, level: float) -> Forecast:
    """A normal interval ``mean +- z * sigma`` (sigma broadcast to the mean's shape)."""
    half = z_value(level) * np.broadcast_to(sigma, mean.shape)
    return Forecast(mean, mean - half, mean + half, level)


def _check_exog(exog: Exogenous | None, n_steps: int, forecaster: str) -> Exogenous | None:
    if exog is not None and exog.values.shape[0] < n_steps:
        raise ForecastInputError(
            "exog", f"has {exog.values.shape[0]} rows but the history alone has {n_steps} steps", forecaster
        )
    return exog


# --------------------------------------------------------------------------- the yardsticks


class NaiveForecaster:
    """Tomorrow looks like now: every step ahead is the last observed value.

    The interval is that of a random walk: the spread of one-step changes times ``sqrt(k)``.
    """

    name = "naive"
    uses_exog = False

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Remember the last value and the spread of one-step changes."""
        return self.observe(history, exog)

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Same as :meth:`fit`: the naive forecast has no parameters."""
        y = check_history(history, self.name)
        self.last_ = last_observed(y)
        self.sigma_ = _nan_std(np.diff(y, axis=1)) if y.shape[1] > 1 else np.zeros(y.shape[0])
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """Repeat the last value ``h`` times, interval widening with ``sqrt(k)``."""
        h = check_horizon(h, self.name)
        level = check_level(level, self.name)
        mean = np.repeat(self.last_[:, None], h, axis=1)
        sigma = self.sigma_[:, None] * np.sqrt(np.arange(1, h + 1))[None, :]
        return normal_interval(mean, sigma, level)


class SeasonalNaiveForecaster:
    """Tomorrow looks like the same time one season ago (``season`` steps, e.g. 288 = a day of 5 min).

    Rows with less than a season of history, and steps whose seasonal value is missing, use the
    naive value instead. The interval is the spread of seasonal differences, widening once per
    season ahead.

    Args:
        season: Season length in steps.
    """

    name = "seasonal_naive"
    uses_exog = False

    def __init__(self, season: int = 288) -> None:
        if int(season) != season or season < 1:
            raise ForecastInputError("season", f"must be a positive integer of steps, got {season}", self.name)
        self.season = int(season)

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Remember the last season and the spread of seasonal differences."""
        return self.observe(history, exog)

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Same as :meth:`fit`: no parameters to keep."""
        y = check_history(history, self.name)
        m = self.season
        self.naive_ = NaiveForecaster().observe(y)
        if y.shape[1] >= m:
            self.last_season_ = y[:, -m:]
        else:
            self.last_season_ = np.full((y.shape[0], m), np.nan)
        diffs = y[:, m:] - y[:, :-m] if y.shape[1] > m else np.full((y.shape[0], 1), np.nan)
        self.sigma_ = _nan_std(diffs)
        self.has_season_ = (~np.isnan(diffs)).sum(axis=1) >= 2
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """Repeat the last season; fall back to naive per row or step where it is missing."""
        h = check_horizon(h, self.name)
        level = check_level(level, self.name)
        naive = self.naive_.forecast(h, level)
        k = np.arange(h)
        seasonal = self.last_season_[:, k % self.season]
        sigma = self.sigma_[:, None] * np.sqrt(k // self.season + 1.0)[None, :]
        use = self.has_season_[:, None] & ~np.isnan(seasonal)
        mean = np.where(use, seasonal, naive.mean)
        half = np.where(use, z_value(level) * sigma, naive.upper - naive.mean)
        return Forecast(mean, mean - half, mean + half, level)


class LocalRegressionForecaster:
    """CloudSim's LR forecast: a least-squares line through the newest 10 samples, extrapolated.

    This is the prediction inside the LR overload detector (:class:`policies.overload_detectors.
    LocalRegression`), computed by the same :func:`cloudsim_weighted_line` with the same tricube
    weights, so the forecaster and the detector cannot drift apart. The interval is the ordinary
    least-squares prediction interval of that line. Rows with fewer than 10 observations fall back to
    naive, as the detector falls back to a threshold.
    """

    name = "local_regression"
    uses_exog = False

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Fit the line through each row's newest 10 samples (missing ones forward-filled)."""
        return self.observe(history, exog)

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Same as :meth:`fit`: the line is refitted on every call, as CloudSim does each round."""
        y = check_history(history, self.name)
        n = REGRESSION_WINDOW
        self.naive_ = NaiveForecaster().observe(y)
        window = forward_fill(y[:, -n:]) if y.shape[1] >= n else np.full((y.shape[0], n), np.nan)
        self.enough_ = (~np.isnan(y[:, -n:])).sum(axis=1) >= n if y.shape[1] >= n else np.zeros(y.shape[0], bool)
        filled = np.where(np.isnan(window), 0.0, window)
        intercept, slope = cloudsim_weighted_line(filled, np.broadcast_to(tricube_weights(n), filled.shape))
        x = np.arange(1.0, n + 1.0)
        residuals = filled - (intercept[:, None] + slope[:, None] * x[None, :])
        self.intercept_, self.slope_ = intercept, slope
        self.resid_std_ = np.sqrt((residuals**2).sum(axis=1) / (n - 2))
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """Extrapolate each line to ``x = 10 + k``; naive where the history is short."""
        h = check_horizon(h, self.name)
        level = check_level(level, self.name)
        n = REGRESSION_WINDOW
        x0 = n + np.arange(1.0, h + 1.0)
        x_mean = (n + 1.0) / 2.0
        sxx = ((np.arange(1.0, n + 1.0) - x_mean) ** 2).sum()
        mean = self.intercept_[:, None] + self.slope_[:, None] * x0[None, :]
        spread = np.sqrt(1.0 + 1.0 / n + (x0 - x_mean) ** 2 / sxx)
        half = z_value(level) * self.resid_std_[:, None] * spread[None, :]
        naive = self.naive_.forecast(h, level)
        use = self.enough_[:, None]
        mean = np.where(use, mean, naive.mean)
        half = np.where(use, half, naive.upper - naive.mean)
        return Forecast(mean, mean - half, mean + half, level)


# --------------------------------------------------------------------------- ARIMA


@dataclass
class _ArimaCoefficients:
    """Per-series ARIMA parameters, padded to common widths so forecasting is one numpy pass.

    ``phi`` is the AR polynomial already multiplied by ``(1 - B)^d``, so differencing needs no
    special case: the level itself follows ``z_t = sum phi_i z_{t-i} + e_t + sum theta_j e_{t-j}``
    with ``z = y - mu - X beta``.
    """

    phi: FloatArray  # (series, R)
    theta: FloatArray  # (series, Q)
    mu: FloatArray  # (series,)
    beta: FloatArray  # (series, k)
    sigma2: FloatArray  # (series,)
    orders: list[tuple[int, int, int]] = field(default_factory=list)


def _integrated_ar(ar: Sequence[float], d: int) -> FloatArray:
    """Coefficients of ``phi(B)(1-B)^d`` written as ``1 - sum c_i B^i``; returns ``c``."""
    poly = np.concatenate([[1.0], -np.asarray(ar, dtype=np.float64)])
    for _ in range(d):
        poly = np.convolve(poly, [1.0, -1.0])
    return -poly[1:]


def invertible_ma(theta: FloatArray) -> tuple[FloatArray, float]:
    """Reflect MA roots inside the unit circle; return the new coefficients and the variance factor.

    Why: an ML fit may land on a non-invertible MA (AutoARIMA does, now and then). It describes the
    same autocorrelations as its invertible twin, but the conditional residual recursion used by
    :meth:`ArimaForecaster.observe` explodes on it. Each root ``r`` inside the unit circle becomes
    ``1 / conj(r)`` and the innovation variance is divided by ``|r|^2`` (for MA(1): ``theta -> 1 /
    theta``, ``sigma^2 -> theta^2 sigma^2``), as R's ``arima`` does with ``maInvert``.
    """
    q = len(theta)
    while q and theta[q - 1] == 0.0:
        q -= 1
    if q == 0:
        return theta, 1.0
    roots = np.roots(np.concatenate([theta[:q][::-1], [1.0]]))
    inside = np.abs(roots) < 1.0
    if not inside.any():
        return theta, 1.0
    factor = float(np.prod(1.0 / np.abs(roots[inside]) ** 2))
    roots = np.where(inside, 1.0 / np.conj(roots), roots)
    poly = np.real(np.poly(roots))  # highest degree first, leading 1
    poly = poly / poly[-1]
    out = np.zeros_like(theta)
    out[:q] = poly[::-1][1:]
    return out, factor


class ArimaForecaster:
    """ARIMA per series, estimated by statsforecast and forecast for the whole fleet in one pass.

    Estimation (``fit``) is statsforecast's ARIMA (fixed ``order``) or AutoARIMA (``auto=True``,
    non-seasonal, orders chosen by AICc per series), one series after the other: it is the costly
    part (tens of ms a series) and is meant to run seldom. ``observe`` and ``forecast`` then use the
    fitted coefficients for every series at once: the residuals come from the conditional-sum-of-
    squares recursion over the window, the mean from the ARMA recursion, the interval from the
    psi-weights (``sigma^2 * sum psi_j^2``), all vectorised over series. With exogenous input the
    model is a regression with ARIMA errors (``y = mu + X beta + n``), columns constant over a
    series' history dropped for that series (no information, and they would make the fit singular).

    Rows with fewer than ``min_obs`` observations are a random walk (the naive forecast).

    Args:
        order: ``(p, d, q)`` for the fixed-order model.
        auto: Choose the order per series with AutoARIMA (``max_p``, ``max_q``, ``max_d``).
        include_mean: Estimate a mean when ``d == 0``.
        method: statsforecast's estimation method (``CSS-ML``, ``ML`` or ``CSS``).
        max_p: AutoARIMA's largest ``p``.
        max_q: AutoARIMA's largest ``q``.
        max_d: AutoARIMA's largest ``d``.
        min_obs: Fewer observations than this and the row falls back to naive.
        fit_window: Only the newest this many steps are used for estimation (None: all).
    """

    uses_exog = True

    def __init__(
        self,
        order: Sequence[int] = (1, 0, 1),
        *,
        auto: bool = False,
        include_mean: bool = True,
        method: str = "CSS-ML",
        max_p: int = 3,
        max_q: int = 3,
        max_d: int = 1,
        min_obs: int = 30,
        fit_window: int | None = None,
    ) -> None:
        self.name = "auto_arima" if auto else "arima"
        if len(order) != 3 or any(int(o) != o or o < 0 for o in order):
            raise ForecastInputError("order", f"must be three non-negative integers (p, d, q), got {order}", self.name)
        if method not in ("CSS-ML", "ML", "CSS"):
            raise ForecastInputError("method", f"must be CSS-ML, ML or CSS, got {method!r}", self.name)
        if min_obs < 3:
            raise ForecastInputError("min_obs", f"must be at least 3, got {min_obs}", self.name)
        self.order: tuple[int, int, int] = (int(order[0]), int(order[1]), int(order[2]))
        self.auto = auto
        self.include_mean = include_mean
        self.method = method
        self.max_p, self.max_q, self.max_d = max_p, max_q, max_d
        self.min_obs = min_obs
        self.fit_window = fit_window

    # ---- estimation (statsforecast, per series)

    def _model(self) -> Any:
        from statsforecast.models import ARIMA, AutoARIMA

        if self.auto:
            return AutoARIMA(season_length=1, max_p=self.max_p, max_q=self.max_q, max_d=self.max_d, allowdrift=False)
        return ARIMA(order=self.order, include_mean=self.include_mean, method=self.method)

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Estimate each series' coefficients with statsforecast, then condition on ``history``."""
        y = check_history(history, self.name)
        n, t = y.shape
        exog = _check_exog(exog, t, self.name)
        start = 0 if self.fit_window is None else max(0, t - self.fit_window)
        k = exog.n_features if exog is not None else 0
        phis: list[FloatArray] = []
        thetas: list[FloatArray] = []
        mu = np.zeros(n)
        beta = np.zeros((n, k))
        sigma2 = np.zeros(n)
        orders: list[tuple[int, int, int]] = []
        filled = forward_fill(y)
        for i in range(n):
            row = y[i, start:]
            observed = np.flatnonzero(~np.isnan(row))
            if observed.size < self.min_obs:
                phis.append(np.array([1.0]))
                thetas.append(np.zeros(0))
                diffs = np.diff(row[~np.isnan(row)])
                sigma2[i] = float(np.var(diffs, ddof=1)) if diffs.size >= 2 else 0.0
                orders.append((0, 1, 0))
                continue
            first = start + int(observed[0])
            series = filled[i, first:]
            x_cols: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
            x = None
            if exog is not None:
                block = exog.values[first:t]
                x_cols = np.flatnonzero(np.ptp(block, axis=0) > 1e-12)
                x = block[:, x_cols] if x_cols.size else None
            model = self._fit_one(series, x)
            coef = model["coef"]
            p, q, _, _, _, d, _ = model["arma"]
            ar = [coef[f"ar{j}"] for j in range(1, p + 1)]
            phis.append(_integrated_ar(ar, d))
            theta, variance_factor = invertible_ma(
                np.array([coef[f"ma{j}"] for j in range(1, q + 1)], dtype=np.float64)
            )
            thetas.append(theta)
            mu[i] = coef.get("intercept", 0.0)
            if x is not None:
                beta[i, x_cols] = [coef.get(f"ex_{j + 1}", 0.0) for j in range(x_cols.size)]
            sigma2[i] = float(model["sigma2"]) * variance_factor
            orders.append((p, d, q))
        width_r = max(1, *(len(p) for p in phis))
        width_q = max(1, *(len(q) for q in thetas))
        phi = np.zeros((n, width_r))
        theta = np.zeros((n, width_q))
        for i in range(n):
            phi[i, : len(phis[i])] = phis[i]
            theta[i, : len(thetas[i])] = thetas[i]
        self.coef_ = _ArimaCoefficients(phi, theta, mu, beta, np.maximum(sigma2, 0.0), orders)
        self.n_exog_ = k
        return self.observe(y, exog)

    def _fit_one(self, series: FloatArray, x: FloatArray | None) -> dict[str, Any]:
        """Fit one series; a fit that fails numerically is retried without regressors, then as CSS."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for attempt_x in (x, None):
                try:
                    return dict(self._model().fit(series, X=attempt_x).model_)
                except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
                    continue
            from statsforecast.models import ARIMA

            return dict(ARIMA(order=(0, 1, 0), include_mean=False).fit(series).model_)

    # ---- conditioning and forecasting (numpy, all series at once)

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Recompute every series' residuals on ``history`` with the fitted coefficients (no re-estimation)."""
        if not hasattr(self, "coef_"):
            raise ForecastInputError("observe", "call fit() first", self.name)
        y = check_history(history, self.name)
        n, t = y.shape
        c = self.coef_
        if n != c.phi.shape[0]:
            raise ForecastInputError(
                "history", f"has {n} series but the model was fitted on {c.phi.shape[0]}", self.name
            )
        exog = _check_exog(exog, t, self.name)
        if (exog.n_features if exog is not None else 0) != self.n_exog_:
            raise ForecastInputError(
                "exog",
                f"has {exog.n_features if exog else 0} columns, the model was fitted with {self.n_exog_}",
                self.name,
            )
        regression = exog.values[:t] @ c.beta.T if exog is not None else np.zeros((t, n))
        z = forward_fill(y) - c.mu[:, None] - regression.T
        self.empty_ = np.isnan(z[:, -1])
        z = np.where(np.isnan(z), 0.0, z)
        r, q = c.phi.shape[1], c.theta.shape[1]
        e = np.zeros((n, t))
        if t > r:
            # Conditional sum of squares: residuals start at zero and follow the ARMA recursion.
            ar_part = sum(c.phi[:, i : i + 1] * z[:, r - 1 - i : t - 1 - i] for i in range(r))
            base = z[:, r:] - ar_part
            if not np.any(c.theta):
                e[:, r:] = base
            else:
                for s in range(r, t):
                    ma = sum(c.theta[:, j] * e[:, s - 1 - j] for j in range(q) if s - 1 - j >= 0)
                    e[:, s] = base[:, s - r] - ma
        self.z_tail_ = np.zeros((n, r))
        self.z_tail_[:, -min(r, t) :] = z[:, -min(r, t) :]
        self.e_tail_ = np.zeros((n, q))
        self.e_tail_[:, -min(q, t) :] = e[:, -min(q, t) :]
        self.exog_ = exog
        self.history_steps_ = t
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """Run the ARMA recursion ``h`` steps with future shocks at zero; psi-weight intervals."""
        if not hasattr(self, "z_tail_"):
            raise ForecastInputError("forecast", "call fit() first", self.name)
        h = check_horizon(h, self.name)
        level = check_level(level, self.name)
        c = self.coef_
        n, r = self.z_tail_.shape
        q = self.e_tail_.shape[1]
        future = np.zeros((h, n))
        if self.exog_ is not None:
            t = self.history_steps_
            if self.exog_.values.shape[0] < t + h:
                raise ForecastInputError(
                    "exog", f"covers {self.exog_.values.shape[0] - t} future steps, {h} were asked for", self.name
                )
            future = self.exog_.values[t : t + h] @ c.beta.T
        z = np.concatenate([self.z_tail_, np.zeros((n, h))], axis=1)
        e = np.concatenate([self.e_tail_, np.zeros((n, h))], axis=1)
        for k in range(h):
            ar = (c.phi[:, ::-1] * z[:, k : k + r]).sum(axis=1)
            ma = (c.theta[:, ::-1] * e[:, k : k + q]).sum(axis=1)
            z[:, r + k] = ar + ma
        mean = z[:, r:] + c.mu[:, None] + future.T
        psi = np.zeros((n, h))
        psi[:, 0] = 1.0
        for j in range(1, h):
            value = c.theta[:, j - 1].copy() if j - 1 < q else np.zeros(n)
            for i in range(1, min(j, r) + 1):
                value += c.phi[:, i - 1] * psi[:, j - i]
            psi[:, j] = value
        sigma = np.sqrt(c.sigma2[:, None] * np.cumsum(psi**2, axis=1))
        mean[self.empty_] = np.nan
        return normal_interval(mean, sigma, level)


# --------------------------------------------------------------------------- registry

ForecasterFactory = Callable[..., Forecaster]


def _lstm_factory(**params: Any) -> Forecaster:
    from policies.forecast_lstm import LstmForecaster  # torch loads only when an LSTM is asked for

    return LstmForecaster(**params)


FORECASTERS: dict[str, ForecasterFactory] = {
    "naive": NaiveForecaster,
    "seasonal_naive": SeasonalNaiveForecaster,
    "local_regression": LocalRegressionForecaster,
    "arima": ArimaForecaster,
    "auto_arima": lambda **params: ArimaForecaster(auto=True, **params),
    "lstm": _lstm_factory,
}
"""Forecasters by name; each factory's keyword arguments are the forecaster's parameters."""


def available_forecasters() -> list[str]:
    """Names :func:`make_forecaster` accepts."""
    return list(FORECASTERS)


def make_forecaster(name: str, params: Mapping[str, Any] | None = None) -> Forecaster:
    """Build a forecaster by name.

    Raises:
        ForecastInputError: Unknown name, or parameters the forecaster does not take.
    """
    if name not in FORECASTERS:
        raise ForecastInputError("name", f"unknown forecaster {name!r}; available: {', '.join(FORECASTERS)}")
    try:
        return FORECASTERS[name](**dict(params or {}))
    except TypeError as exc:
        raise ForecastInputError("params", f"{exc}", name) from None


def mase_scale(history: FloatArray, season: int) -> FloatArray:
    """In-sample mean absolute seasonal-naive error per row (NaN where it cannot be computed).

    The MASE denominator: a forecaster with MASE 1 is as good out of sample as the seasonal-naive
    forecast was in sample. Rows with less than a season plus one step use ``season = 1``.
    """
    y = check_history(history, "mase")
    out = np.full(y.shape[0], np.nan)
    for m in (season, 1):
        if y.shape[1] <= m:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmean(np.abs(y[:, m:] - y[:, :-m]), axis=1)
        out = np.where(np.isnan(out), scale, out)
    return out


__all__ = [
    "FORECASTERS",
    "ArimaForecaster",
    "Exogenous",
    "Forecast",
    "ForecastInputError",
    "Forecaster",
    "LocalRegressionForecaster",
    "NaiveForecaster",
    "ScheduledEvent",
    "SeasonalNaiveForecaster",
    "available_forecasters",
    "calendar_features",
    "covered_cycles",
    "event_features",
    "invertible_ma",
    "make_forecaster",
    "mase_scale",
]
