"""Laws every forecaster obeys, and what each one must get exactly right on constructed series."""

from __future__ import annotations

import numpy as np
import pytest

from policies.forecasting import (
    ArimaForecaster,
    Exogenous,
    ForecastInputError,
    LocalRegressionForecaster,
    NaiveForecaster,
    ScheduledEvent,
    SeasonalNaiveForecaster,
    calendar_features,
    covered_cycles,
    event_features,
    make_forecaster,
    mase_scale,
)
from policies.overload_detectors import LocalRegression


def _ar1(rng: np.random.Generator, n: int, t: int, phi: float, mu: float, sigma: float) -> np.ndarray:
    y = np.zeros((n, t))
    for s in range(1, t):
        y[:, s] = phi * y[:, s - 1] + rng.normal(size=n) * sigma
    return y + mu


@pytest.fixture(scope="module")
def fleet() -> np.ndarray:
    """Twelve noisy daily-cycle series with the usual trouble: a young instance, a gap, an empty row."""
    rng = np.random.default_rng(7)
    t = np.arange(400)
    y = 0.4 + 0.2 * np.sin(2 * np.pi * t / 48)[None, :] + _ar1(rng, 12, 400, 0.6, 0.0, 0.03)
    y[1, :350] = np.nan  # young instance
    y[2, 200:210] = np.nan  # missing samples
    y[3, -3:] = np.nan  # newest samples missing
    y[4, :] = np.nan  # no observation at all
    return y


CHEAP = [
    lambda: NaiveForecaster(),
    lambda: SeasonalNaiveForecaster(season=48),
    lambda: LocalRegressionForecaster(),
    lambda: ArimaForecaster(order=(1, 0, 1), min_obs=30),
    lambda: ArimaForecaster(order=(2, 1, 1), min_obs=30),
]


@pytest.mark.parametrize("build", CHEAP, ids=["naive", "snaive", "lr", "arima101", "arima211"])
def test_shapes_intervals_and_nan_rows(build, fleet: np.ndarray) -> None:
    fc = build().fit(fleet).forecast(6, level=0.9)
    assert fc.mean.shape == fc.lower.shape == fc.upper.shape == (12, 6)
    assert fc.level == 0.9
    empty = np.zeros(12, bool)
    empty[4] = True
    assert np.isnan(fc.mean[empty]).all()
    assert np.isfinite(fc.mean[~empty]).all()
    ok = ~empty
    assert (fc.lower[ok] <= fc.mean[ok]).all() and (fc.mean[ok] <= fc.upper[ok]).all()


@pytest.mark.parametrize("build", CHEAP[:4], ids=["naive", "snaive", "lr", "arima101"])
def test_wider_level_gives_wider_interval(build, fleet: np.ndarray) -> None:
    f = build().fit(fleet)
    narrow, wide = f.forecast(3, level=0.5), f.forecast(3, level=0.99)
    ok = np.isfinite(narrow.mean)
    assert ((wide.upper - wide.lower)[ok] >= (narrow.upper - narrow.lower)[ok] - 1e-12).all()


def test_naive_is_exact_on_a_step_series() -> None:
    y = np.array([[1.0, 2.0, 3.0, np.nan], [5.0, 5.0, 5.0, 5.0]])
    fc = NaiveForecaster().fit(y).forecast(3)
    np.testing.assert_array_equal(fc.mean, [[3.0, 3.0, 3.0], [5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(fc.lower[1], fc.mean[1])  # no change ever seen: no spread


def test_seasonal_naive_repeats_the_last_season_exactly() -> None:
    pattern = np.array([0.1, 0.5, 0.9, 0.3])
    y = np.tile(pattern, 5)[None, :]
    fc = SeasonalNaiveForecaster(season=4).fit(y).forecast(6)
    np.testing.assert_array_equal(fc.mean[0], np.tile(pattern, 2)[:6])
    np.testing.assert_allclose(fc.upper - fc.lower, 0.0, atol=1e-12)  # perfectly periodic: no spread


def test_seasonal_naive_falls_back_to_naive_without_a_full_season() -> None:
    y = np.array([[0.2, 0.4, 0.6]])
    fc = SeasonalNaiveForecaster(season=10).fit(y).forecast(2)
    np.testing.assert_array_equal(fc.mean, [[0.6, 0.6]])


def test_local_regression_extrapolates_a_line_and_matches_the_detector() -> None:
    y = (0.3 + 0.01 * np.arange(30))[None, :]
    fc = LocalRegressionForecaster().fit(y).forecast(3)
    np.testing.assert_allclose(fc.mean[0], 0.3 + 0.01 * np.arange(30, 33), atol=1e-12)
    # The detector predicts s * forecast at 10 + ceil(migration time / 300) steps: here 1 step ahead.
    from policies.overload_detectors import HostLoad

    load = HostLoad(util=y[:, -1], history=y, max_ram_bytes=np.array([1.0]))
    detector = LocalRegression(safety=1.0)
    np.testing.assert_allclose(detector.predictions(load), fc.mean[:, 0], atol=1e-12)


def test_arima_recovers_an_ar1_coefficient_and_its_forecast() -> None:
    rng = np.random.default_rng(3)
    y = _ar1(rng, 20, 600, 0.7, 0.5, 0.05)
    f = ArimaForecaster(order=(1, 0, 0)).fit(y)
    phi = f.coef_.phi[:, 0]
    assert abs(phi.mean() - 0.7) < 0.03
    assert np.all(np.abs(phi - 0.7) < 0.15)
    fc = f.forecast(3)
    mu = f.coef_.mu
    expected = mu[:, None] + (y[:, -1] - mu)[:, None] * phi[:, None] ** np.arange(1, 4)[None, :]
    np.testing.assert_allclose(fc.mean, expected, atol=1e-10)


def test_arima_matches_statsforecast_for_fixed_order_with_regressors() -> None:
    from statsforecast.models import ARIMA

    rng = np.random.default_rng(4)
    y = _ar1(rng, 2, 500, 0.6, 0.4, 0.05)
    exog = calendar_features(0.0, 300.0, 506, cycles=("day",))
    fc = ArimaForecaster(order=(1, 0, 1)).fit(y, exog).forecast(6)
    ref = ARIMA(order=(1, 0, 1), include_mean=True).forecast(
        y[1], h=6, X=exog.values[:500], X_future=exog.values[500:], level=[95]
    )
    np.testing.assert_allclose(fc.mean[1], ref["mean"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fc.upper[1], np.asarray(ref["hi-95"]), rtol=1e-5, atol=1e-8)


def test_arima_observe_reconditions_without_refitting() -> None:
    rng = np.random.default_rng(5)
    y = _ar1(rng, 5, 300, 0.7, 0.5, 0.05)
    f = ArimaForecaster(order=(1, 0, 0)).fit(y[:, :250])
    phi = f.coef_.phi.copy()
    fc = f.observe(y).forecast(1)
    np.testing.assert_array_equal(f.coef_.phi, phi)
    np.testing.assert_allclose(fc.mean[:, 0], f.coef_.mu + phi[:, 0] * (y[:, -1] - f.coef_.mu))
    with pytest.raises(ForecastInputError, match="fitted on 5"):
        f.observe(y[:3])


def test_exogenous_regressor_is_used_by_arima() -> None:
    rng = np.random.default_rng(6)
    t = 400
    event = np.zeros((t + 5, 1))
    event[100:120] = event[300:320] = event[t : t + 5] = 1.0
    y = 0.3 + 0.4 * event[:t, 0][None, :] + rng.normal(size=(3, t)) * 0.02
    exog = Exogenous(event, ("campaign",))
    with_ex = ArimaForecaster(order=(1, 0, 0)).fit(y, exog).forecast(5)
    without = ArimaForecaster(order=(1, 0, 0)).fit(y).forecast(5)
    assert np.all(np.abs(with_ex.mean - 0.7) < 0.05)
    assert np.all(without.mean < 0.6)


def test_calendar_and_event_features() -> None:
    cal = calendar_features(0.0, 3600.0, 48)
    assert cal.names == ("hod_sin", "hod_cos", "hod2_sin", "hod2_cos", "dow_sin", "dow_cos")
    np.testing.assert_allclose(cal.values[0], cal.values[24][:4].tolist() + cal.values[0][4:].tolist(), atol=1e-12)
    assert covered_cycles(2 * 86400.0) == ("day",)
    ev = event_features([ScheduledEvent("sale", 7200.0, 10800.0, 1.5)], 0.0, 3600.0, 5)
    np.testing.assert_array_equal(ev.values[:, 0], [0, 0, 0.5, 0, 0])
    with pytest.raises(ForecastInputError, match=r"events\.bad"):
        event_features([ScheduledEvent("bad", 5.0, 5.0)], 0.0, 1.0, 3)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ForecastInputError, match=r"forecaster\.naive\.history: expected a 2-D"):
        NaiveForecaster().fit(np.zeros(5))
    with pytest.raises(ForecastInputError, match=r"\.h: must be a positive"):
        NaiveForecaster().fit(np.zeros((1, 5))).forecast(0)
    with pytest.raises(ForecastInputError, match=r"\.level"):
        NaiveForecaster().fit(np.zeros((1, 5))).forecast(1, level=1.5)
    with pytest.raises(ForecastInputError, match="unknown forecaster 'prophet'"):
        make_forecaster("prophet")
    with pytest.raises(ForecastInputError, match=r"forecaster\.arima\.exog: covers 0 future steps"):
        exog = calendar_features(0.0, 300.0, 100, cycles=("day",))
        ArimaForecaster(order=(1, 0, 0)).fit(np.random.default_rng(0).normal(size=(1, 100)), exog).forecast(1)


def test_mase_scale_uses_the_season_and_falls_back_to_one_step() -> None:
    y = np.array([[0.0, 1.0, 0.0, 1.0, 0.0], [1.0, 2.0, np.nan, np.nan, np.nan]])
    scale = mase_scale(y, season=2)
    assert scale[0] == 0.0  # perfectly periodic
    assert scale[1] == 1.0  # too short for the season: naive differences


def test_non_invertible_ma_is_reflected_with_its_variance() -> None:
    from policies.forecasting import invertible_ma

    theta, factor = invertible_ma(np.array([2.0]))
    np.testing.assert_allclose(theta, [0.5])
    assert factor == pytest.approx(4.0)
    theta, factor = invertible_ma(np.array([0.3, 0.0]))
    np.testing.assert_array_equal(theta, [0.3, 0.0])
    assert factor == 1.0
