"""The declared schedule in the core: the fleet view carries only the declaration, the predictive policy
feeds it (over history and horizon) to forecasters, as exogenous columns or as a declared scaling."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import pytest

from policies import forecasting
from policies.errors import PolicyConfigError
from policies.event_inputs import declared_scaling, deflate, exog_groups, grid_times
from policies.fleet import FleetSnapshot
from policies.forecasting import Exogenous, FloatArray, Forecast, normal_interval
from policies.predictive_policy import PredictivePolicy
from policies.scheduled_events import ScheduledEvent, declared_multipliers
from tests.fakes.fleet_builder import FleetBuilder

HISTORY = 30
STEP = 300.0
NOW = 100 * STEP


def fleet(events: tuple[ScheduledEvent, ...] = (), step_s: float | None = STEP) -> FleetSnapshot:
    """Four instances on four hosts, flat history at 40 %, the newest sample at ``NOW``."""
    builder = FleetBuilder()
    for k in range(4):
        builder.host(f"h{k}").instance(f"i{k}", f"h{k}", request_mips=200.0, capacity_mips=500.0)
    base = builder.build()
    history = np.full((4, HISTORY), 0.4)
    return dataclasses.replace(
        base, now_s=NOW, instance_cpu_history=history, declared_events=events, history_step_s=step_s
    )


class SpyForecaster:
    """Naive forecaster that records every exogenous matrix it is given (test double)."""

    name = "spy"
    uses_exog = True
    seen: ClassVar[list[tuple[int, Exogenous | None]]] = []

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        type(self).seen.append((history.shape[0], exog))
        self.last_ = history[:, -1]
        return self

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        return self.fit(history, exog)

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        return normal_interval(np.repeat(self.last_[:, None], h, axis=1), np.full((self.last_.size, h), 0.01), level)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> type[SpyForecaster]:
    monkeypatch.setitem(forecasting.FORECASTERS, "spy", SpyForecaster)
    monkeypatch.setattr(SpyForecaster, "seen", [])
    return SpyForecaster


CAMPAIGN = ScheduledEvent("spring-sale", NOW + STEP, NOW + 10 * STEP, 2.5, kind="campaign", instance_ids=("i1", "i2"))
PEAK = ScheduledEvent("black-friday", NOW - 5 * STEP, NOW + 2 * STEP, 1.5, kind="seasonal_peak")


def test_a_scheduled_event_has_no_field_for_the_real_effect() -> None:
    names = {f.name for f in dataclasses.fields(ScheduledEvent)}
    assert names == {"name", "start_s", "end_s", "multiplier", "kind", "instance_ids"}
    assert not any("actual" in n or "ramp" in n for n in names)
    assert fleet().declared_events == ()  # the default: nothing declared


def test_declared_multipliers_per_instance_and_time() -> None:
    times = grid_times(NOW, STEP, 3, 2)
    np.testing.assert_allclose(times, NOW + STEP * np.array([-2, -1, 0, 1, 2]))
    m = declared_multipliers([CAMPAIGN, PEAK], ("i0", "i1", "i2", "i3"), times)
    np.testing.assert_allclose(m[0], [1.5, 1.5, 1.5, 1.5, 1.0])
    np.testing.assert_allclose(m[1], [1.5, 1.5, 1.5, 3.75, 2.5])


def test_exog_groups_split_by_events_and_cover_history_and_horizon() -> None:
    groups = exog_groups([CAMPAIGN, PEAK], ("i0", "i1", "i2", "i3"), now_s=NOW, step_s=STEP, n_history=HISTORY,
                         horizon=3)  # fmt: skip
    assert [(g.key, g.rows.tolist()) for g in groups] == [((1,), [0, 3]), ((0, 1), [1, 2])]
    quiet, touched = groups
    assert quiet.exog is not None and quiet.exog.names == ("seasonal_peak",)
    assert touched.exog is not None and touched.exog.names == ("campaign", "seasonal_peak")
    assert touched.exog.values.shape == (HISTORY + 3, 2)
    # rows: history (newest at NOW = row 29), then the 3 horizon steps
    np.testing.assert_allclose(touched.exog.values[28:, 0], [0.0, 0.0, 1.5, 1.5, 1.5])
    np.testing.assert_allclose(touched.exog.values[23:, 1], [0.0] + [0.5] * 7 + [0.0, 0.0])


def test_scaling_takes_the_declared_effect_out_of_history_and_puts_it_in_the_forecast() -> None:
    maintenance = ScheduledEvent("mw", NOW - STEP, NOW + STEP, 0.0, kind="maintenance", instance_ids=("i0",))
    past, future = declared_scaling([maintenance, CAMPAIGN], ("i0", "i1"), now_s=NOW, step_s=STEP, n_history=4,
                                    horizon=2)  # fmt: skip
    history = np.array([[0.4, 0.4, 0.0, 0.0], [0.4, 0.4, 0.4, 0.4]])
    clean = deflate(history, past)
    assert np.isnan(clean[0, 2:]).all() and (clean[0, :2] == 0.4).all()
    np.testing.assert_allclose(future, [[1.0, 1.0], [2.5, 2.5]])


def test_policy_feeds_events_over_history_and_horizon(spy: type[SpyForecaster]) -> None:
    policy = PredictivePolicy(forecaster="spy", horizon=3, min_history=12)
    policy.decide(fleet((CAMPAIGN,)))
    by_rows = {n: exog for n, exog in spy.seen}
    assert set(by_rows) == {2}  # two groups of two instances each
    exogs = [exog for _, exog in spy.seen]
    assert exogs.count(None) == 1  # i0, i3: no event, no inputs
    given = next(e for e in exogs if e is not None)
    assert given.names == ("campaign",)
    assert given.values.shape == (HISTORY + 3, 1)
    np.testing.assert_allclose(given.values[-4:, 0], [0.0, 1.5, 1.5, 1.5])


def test_policy_without_events_calls_the_forecaster_as_before(spy: type[SpyForecaster]) -> None:
    PredictivePolicy(forecaster="spy", horizon=3, min_history=12).decide(fleet())
    assert spy.seen == [(4, None)]
    PredictivePolicy(forecaster="spy", horizon=3, min_history=12, declared_events="ignore").decide(fleet((CAMPAIGN,)))
    assert spy.seen[-1] == (4, None)
    # a world that does not say how far apart its samples are cannot place the events: none are fed
    PredictivePolicy(forecaster="spy", horizon=3, min_history=12).decide(fleet((CAMPAIGN,), step_s=None))
    assert spy.seen[-1] == (4, None)


def test_scale_mode_multiplies_the_forecast_by_the_declaration(spy: type[SpyForecaster]) -> None:
    policy = PredictivePolicy(forecaster="spy", horizon=3, min_history=12, declared_events="scale")
    forecast = policy.forecast_utilisation(fleet((CAMPAIGN,)))
    assert spy.seen == [(4, None)]
    np.testing.assert_allclose(forecast.mean[:, 0], [0.4, 1.0, 1.0, 0.4])


def test_calendar_is_off_by_default_and_needs_a_covered_cycle(spy: type[SpyForecaster]) -> None:
    PredictivePolicy(forecaster="spy", horizon=3, min_history=12, calendar=True).decide(fleet())
    assert spy.seen[-1] == (4, None)  # 30 samples of 5 min cover no day: nothing to add
    day = dataclasses.replace(fleet(), instance_cpu_history=np.full((4, 300), 0.4))
    PredictivePolicy(forecaster="spy", horizon=3, min_history=12, calendar=True).decide(day)
    rows, exog = spy.seen[-1]
    assert rows == 4 and exog is not None and exog.names[:2] == ("hod_sin", "hod_cos")
    assert exog.values.shape[0] == 303


def test_the_policy_receives_the_same_inputs_whatever_the_real_effect(spy: type[SpyForecaster]) -> None:
    """Everything the policy gets is a function of the declaration; there is nowhere to put the rest."""
    runs: list[Any] = []
    for _ in range(2):
        spy.seen = []
        PredictivePolicy(forecaster="spy", horizon=3, min_history=12).decide(fleet((CAMPAIGN, PEAK)))
        runs.append([(n, None if e is None else (e.names, e.values.tobytes())) for n, e in spy.seen])
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("params", "field"), [({"declared_events": "guess"}, "declared_events"),
                                               ({"calendar": "yes"}, "calendar")])  # fmt: skip
def test_bad_event_parameters_are_named(params: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyConfigError, match=field):
        PredictivePolicy(forecaster="naive", **params)


def test_arima_learns_an_event_seen_in_history_and_applies_the_declared_end() -> None:
    """A campaign in progress: with the declaration the forecast drops when the declared window ends."""
    rng = np.random.default_rng(1)
    n_hist = 120
    base = 0.3 + 0.01 * rng.standard_normal((4, n_hist))
    times = grid_times(NOW, STEP, n_hist, 3)
    event = ScheduledEvent("sale", float(times[80]), float(times[n_hist + 1]), 2.0, kind="campaign")
    history = base.copy()
    history[:, 80:] *= 2.0
    snap = dataclasses.replace(fleet((event,)), instance_cpu_history=history)
    with_events = PredictivePolicy(forecaster="arima", horizon=3, min_history=12).forecast_utilisation(snap)
    without = PredictivePolicy(forecaster="arima", horizon=3, min_history=12, declared_events="ignore")
    blind = without.forecast_utilisation(snap)
    # step 1 still inside the window (~0.6); steps 2-3 after its declared end (~0.3)
    assert np.all(np.abs(with_events.mean[:, 0] - 0.6) < 0.1)
    assert np.all(np.abs(with_events.mean[:, 2] - 0.3) < 0.1)
    assert np.all(blind.mean[:, 2] > 0.45)
