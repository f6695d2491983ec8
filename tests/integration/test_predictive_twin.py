"""The ARIMA predictive policy through the real twin on PlanetLab demand: it forecasts, refits and migrates."""

from __future__ import annotations

import pytest

from mirrortwin.config import load_settings
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from policies.fleet import FleetSnapshot
from policies.predictive_policy import PredictivePolicy
from policies.records import MigrationPlan
from sim.runner import run_scenario

pytestmark = [pytest.mark.usefixtures("traces_root"), pytest.mark.slow]


def test_arima_policy_runs_planetlab_for_hours_and_migrates() -> None:
    overrides = {
        "duration_s": 2.5 * 3600.0,
        # A one-hour history so that the forecasting stage starts after an hour, not 2.5 hours.
        "controller.params.min_history": 12,
        "controller.params.forecaster_params": {"min_obs": 12},
        "controller.params.refit_every": 12,
        "controller.params.underload_threshold": 1.0,
    }
    spec = resolve_for_policy("planetlab-20110303", policy="arima", overrides=overrides)
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    policy = make_scenario_policy(spec)
    assert isinstance(policy, PredictivePolicy)

    predictive_moves = 0
    decide = policy.decide

    def counting(fleet: FleetSnapshot) -> MigrationPlan:
        nonlocal predictive_moves
        plan = decide(fleet)
        if policy.fits:
            predictive_moves += len(plan.moves)
            assert all(m.risk is not None and 0.0 <= m.risk.risk_score <= 1.0 for m in plan.moves)
        return plan

    policy.decide = counting  # type: ignore[method-assign]
    result = run_scenario(spec, population, policy, rng=run_rng)

    assert result.summary["duration_s"] == pytest.approx(2.5 * 3600.0)
    assert result.summary["migrations"] > 0
    # 12 samples at 55 min, so rounds from 55 min to 2.5 h: 20 rounds, estimated at the 1st and the 13th
    assert policy.fits == 2
    assert predictive_moves > 0  # moves decided on forecasts, not only in the threshold fallback
