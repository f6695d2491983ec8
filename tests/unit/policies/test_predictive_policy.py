"""PredictivePolicy on constructed fleets: fallback, acting before the overload, refit cadence, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from policies import forecasting
from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.forecasting import Exogenous, FloatArray, Forecast, normal_interval
from policies.predictive_policy import PredictivePolicy, history_steps, overload_probability
from policies.records import MoveReason
from policies.registry import make_policy
from policies.threshold_policy import ThresholdPolicy
from tests.fakes.fleet_builder import FleetBuilder

HISTORY = 30


def with_history(fleet: FleetSnapshot, history: FloatArray) -> FleetSnapshot:
    """The fleet with ``history`` (instances x time, utilisation) and requests set to its last column."""
    last = np.where(np.isnan(history[:, -1]), 0.0, history[:, -1])
    return dataclasses.replace(
        fleet,
        instance_cpu_history=history,
        instance_cpu_request_mips=last * fleet.instance_cpu_capacity_mips,
    )


def trending_fleet(rng: np.random.Generator, steps: int = HISTORY, end: int = HISTORY) -> FleetSnapshot:
    """h0's two instances climb linearly and end at 76 % of h0 (threshold 80 %); h1-h3 are quiet.

    Each instance has 500 MIPS on a 1000 MIPS host, so host utilisation is the mean of the two
    instances' utilisation. At ~1.9 points a step h0 passes 80 % within the next three steps.
    """
    builder = FleetBuilder().host("h0").host("h1").host("h2").host("h3")
    for k in range(2):
        builder.instance(f"hot{k}", "h0", request_mips=0.0, capacity_mips=500.0, ram_bytes=(1 + k) * 1e9)
    for h in (1, 2, 3):
        builder.instance(f"calm{h}", f"h{h}", request_mips=0.0, capacity_mips=500.0)
    fleet = builder.build()
    t = np.arange(steps, dtype=np.float64)
    hot = 0.76 - 0.0193 * (end - 1 - t)
    calm = np.full(steps, 0.4)
    history = np.vstack([hot, hot, calm, calm, calm]) + 0.002 * rng.standard_normal((5, steps))
    return with_history(fleet, history)


def overloaded_fleet(observed: int) -> FleetSnapshot:
    """h0 at 90 % now (threshold policy moves), with only ``observed`` samples of history."""
    fleet = (
        FleetBuilder()
        .host("h0")
        .instance("i0", "h0", request_mips=500, ram_bytes=2e9)
        .instance("i1", "h0", request_mips=400, ram_bytes=1e9)
        .host("h1")
        .instance("i2", "h1", request_mips=100)
        .host("h2")
        .build()
    )
    history = np.full((3, HISTORY), np.nan)
    history[:, HISTORY - observed :] = np.array([[0.5], [0.4], [0.1]])
    return dataclasses.replace(fleet, instance_cpu_history=history)


# ---------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"refit_every": 1.5}, "refit_every"),
        ({"risk_threshold": 1.0}, "risk_threshold"),
        ({"threshold": 1.2}, "threshold"),
        ({"underload_threshold": -0.1}, "underload_threshold"),
        ({"min_history": 0}, "min_history"),
        ({"mirror_discount": 1.0}, "mirror_discount"),
        ({"mirror_fresh_s": 0}, "mirror_fresh_s"),
        ({"snapshot_interval_risky_s": 60.0}, "snapshot_interval_risky_s"),
        ({"forecaster": "prophet"}, "forecaster"),
        ({"forecaster_params": {"order": [1, 1]}}, "forecaster_params.order"),
        ({"forecaster_params": {"bogus": 1}}, "forecaster_params.params"),
        ({"forecaster": "lstm"}, "artefact"),
        ({"forecaster": "lstm", "artefact": "/nonexistent/model.pt"}, "artefact"),
        ({"artefact": "model.pt"}, "artefact"),
        ({"target_selection": "best"}, "target_selection"),
    ],
)
def test_parameter_errors_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        make_policy("predictive", params)
    assert caught.value.parameter == field
    assert str(caught.value).startswith(f"controller.params.{field}:")


def test_registered_presets_fix_the_forecaster() -> None:
    policy = make_policy("arima", {"horizon": 3})
    assert isinstance(policy, PredictivePolicy)
    assert (policy.name, policy.forecaster_name, policy.horizon) == ("arima", "arima", 3)
    assert policy.min_history == 30  # ARIMA's own min_obs
    with pytest.raises(PolicyConfigError, match=r"controller\.params\.forecaster: unknown parameter for 'arima'"):
        make_policy("arima", {"forecaster": "naive"})


# ---------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("observed", [0, 1, 11])
def test_short_history_returns_exactly_the_threshold_plan(observed: int) -> None:
    fleet = overloaded_fleet(observed)
    params = {"threshold": 0.8, "underload_threshold": 0.5}
    predictive = PredictivePolicy(forecaster="local_regression", min_history=12, **params)
    expected = ThresholdPolicy(**params).decide(fleet)
    assert expected.moves  # the comparison is not vacuous
    assert predictive.decide(fleet) == expected
    assert predictive.fits == 0


def test_moves_off_a_rising_host_before_it_passes_the_threshold() -> None:
    fleet = trending_fleet(np.random.default_rng(1))
    util_now = fleet.host_cpu_util()
    assert util_now[0] < 0.8

    assert not ThresholdPolicy(threshold=0.8).decide(fleet).moves
    plan = PredictivePolicy(forecaster="local_regression", horizon=3, threshold=0.8, min_history=12).decide(fleet)

    assert plan.moves
    assert {m.instance_id for m in plan.moves} <= {"hot0", "hot1"}
    assert all(m.reason is MoveReason.OVERLOAD and m.target_host in {"h1", "h2", "h3"} for m in plan.moves)
    for move in plan.moves:
        assert move.risk is not None and plan.assessments[move.instance_id] == move.risk
        assert move.risk.risk_score > 0.5
        assert move.risk.predicted_load > util_now[0]  # the forecast, not the current load


def test_the_cheaper_instance_leaves_first_and_a_fresh_mirror_makes_it_cheap() -> None:
    fleet = trending_fleet(np.random.default_rng(1))
    policy = PredictivePolicy(forecaster="local_regression", horizon=3, min_history=12)
    # hot0 has half hot1's memory and the same demand: it goes.
    assert [m.instance_id for m in policy.decide(fleet).moves] == ["hot0"]
    # A fresh mirror of hot1 makes hot1 the cheaper move.
    mirrored = dataclasses.replace(
        fleet,
        instance_mirror_ivn=np.array([-1, 0, -1, -1, -1]),
        instance_mirror_age_s=np.array([np.inf, 10.0, np.inf, np.inf, np.inf]),
    )
    policy = PredictivePolicy(forecaster="local_regression", horizon=3, min_history=12)
    assert [m.instance_id for m in policy.decide(mirrored).moves] == ["hot1"]


def test_flat_fleet_under_the_threshold_stays_put() -> None:
    fleet = trending_fleet(np.random.default_rng(1))
    flat = np.repeat(fleet.instance_cpu_history[:, -1:], HISTORY, axis=1)
    plan = PredictivePolicy(forecaster="local_regression", horizon=3, min_history=12).decide(with_history(fleet, flat))
    assert not plan.moves


def test_does_not_consolidate_a_host_predicted_to_rise() -> None:
    fleet = (
        FleetBuilder()
        .host("quiet", ram_bytes=1.5e9)  # too little memory to take the other's instance
        .instance("q", "quiet", request_mips=0.0, capacity_mips=500.0)
        .host("rising", ram_bytes=1.5e9)
        .instance("r", "rising", request_mips=0.0, capacity_mips=500.0)
        .host("busy")
        .instance("b", "busy", request_mips=0.0, capacity_mips=1000.0)
        .build()
    )
    t = np.arange(HISTORY, dtype=np.float64)
    history = np.vstack([np.full(HISTORY, 0.1), 0.02 + 0.01 * t, np.full(HISTORY, 0.55)])
    fleet = with_history(fleet, history)
    params = {"threshold": 0.8, "underload_threshold": 0.5}

    reactive = {m.instance_id for m in ThresholdPolicy(**params).decide(fleet).moves}
    predictive = PredictivePolicy(forecaster="local_regression", min_history=12, **params).decide(fleet)

    assert reactive == {"q", "r"}  # the threshold policy empties both quiet hosts onto "busy"
    assert {m.instance_id for m in predictive.moves} == {"q"}
    assert all(m.reason is MoveReason.UNDERLOAD for m in predictive.moves)


def test_risky_hosts_get_the_short_snapshot_interval_until_the_risk_passes() -> None:
    fleet = trending_fleet(np.random.default_rng(1))
    policy = PredictivePolicy(
        forecaster="local_regression",
        horizon=3,
        min_history=12,
        snapshot_interval_s=300.0,
        snapshot_interval_risky_s=60.0,
    )
    assert policy.decide(fleet).snapshot_intervals_s == {"hot0": 60.0, "hot1": 60.0}
    assert policy.decide(fleet).snapshot_intervals_s == {}  # only changes are sent
    flat = with_history(fleet, np.full_like(fleet.instance_cpu_history, 0.3))
    assert policy.decide(flat).snapshot_intervals_s == {"hot0": 300.0, "hot1": 300.0}


class CountingForecaster:
    """Naive forecasts with a fixed spread; counts estimations and conditionings (test double)."""

    name = "counting"
    uses_exog = False
    fits = 0
    observes = 0

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        type(self).fits += 1
        self.last_ = history[:, -1]
        return self

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        type(self).observes += 1
        self.last_ = history[:, -1]
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        mean = np.repeat(self.last_[:, None], h, axis=1)
        return normal_interval(mean, np.full_like(mean, 0.01), level)


def test_estimates_every_refit_every_rounds_and_observes_in_between(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(forecasting.FORECASTERS, "counting", CountingForecaster)
    monkeypatch.setattr(CountingForecaster, "fits", 0)
    monkeypatch.setattr(CountingForecaster, "observes", 0)
    policy = PredictivePolicy(forecaster="counting", refit_every=3, min_history=12)
    fleet = trending_fleet(np.random.default_rng(0))
    short = overloaded_fleet(5)

    policy.decide(short)  # fallback: the forecaster is not touched
    assert (CountingForecaster.fits, CountingForecaster.observes) == (0, 0)
    fits = []
    for _ in range(10):
        policy.decide(fleet)
        fits.append(CountingForecaster.fits)
    assert fits == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert CountingForecaster.observes == 6
    assert policy.fits == 4

    # A changed instance set cannot be observed with the old model: estimate at once.
    policy.decide(dataclasses.replace(overloaded_fleet(HISTORY)))
    assert CountingForecaster.fits == 5


def test_same_inputs_give_the_same_plans_with_arima() -> None:
    fleets = [trending_fleet(np.random.default_rng(seed), end=HISTORY) for seed in (3, 4, 5)]

    def run() -> list[Any]:
        policy = PredictivePolicy(forecaster="arima", horizon=3, refit_every=2, underload_threshold=0.5)
        return [policy.decide(f) for f in fleets]

    first, second = run(), run()
    assert first == second
    assert any(plan.moves for plan in first)


def test_lstm_policy_loads_a_trained_artefact(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from policies.forecast_lstm import LstmConfig, train_lstm

    rng = np.random.default_rng(0)
    series = 0.4 + 0.05 * rng.standard_normal((8, 60))
    model = train_lstm(series, rng=rng, config=LstmConfig(window=8, horizon=3, hidden=4), steps=3, batch_size=16)
    path = model.save(tmp_path / "lstm.pt")

    policy = make_policy("lstm", {"artefact": str(path), "min_history": 8, "horizon": 3})
    plan = policy.decide(trending_fleet(np.random.default_rng(1)))
    assert isinstance(policy, PredictivePolicy) and policy.fits == 1
    assert all(m.target_host is not None for m in plan.moves)
    with pytest.raises(PolicyConfigError, match=r"controller\.params\.horizon"):
        make_policy("lstm", {"artefact": str(path), "horizon": 4})


def test_overload_probability_and_history_steps() -> None:
    mean = np.array([[700.0, 900.0], [100.0, 100.0], [900.0, 900.0]])
    sd = np.array([[100.0, 100.0], [0.0, 0.0], [0.0, 0.0]])
    risk = overload_probability(mean, sd, np.full(3, 800.0))
    assert risk == pytest.approx([0.8413447, 0.0, 1.0], abs=1e-6)
    history = np.full((3, 5), np.nan)
    history[0, 2:] = 0.1
    history[1, 4:] = 0.1
    history[2, :] = 0.1
    assert history_steps(history, np.array([0, 0, -1])) == 2  # median of 3 and 1; unplaced ignored
