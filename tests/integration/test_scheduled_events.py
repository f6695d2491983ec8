"""Scheduled events through the real twin and forecast-eval, on the bitbrains-campaign scenario.

The twin replays demand with the events' real effect injected; the policy's fleet view carries only
the declaration, so changing an event's actual multiplier changes the demand but not the schedule the
policy receives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mirrortwin.cli import main
from mirrortwin.config import Settings, load_settings
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from policies.fleet import FleetSnapshot
from policies.records import MigrationPlan
from sim.runner import run_scenario

pytestmark = [pytest.mark.usefixtures("traces_root"), pytest.mark.traces]

# 20 h covers the first weekly peak (day 0, 12-20 h); 80 VMs keep it short.
SHORT = {"duration_s": 72_000.0, "workload.instances": 80}
PEAK_START_STEP = 144  # 12:00 at 300 s steps


def _run(overrides: dict[str, Any]) -> tuple[list[FleetSnapshot], Any, Any]:
    spec = resolve_for_policy("bitbrains-campaign", policy="threshold", overrides={**SHORT, **overrides})
    population_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), population_rng)
    policy = make_scenario_policy(spec)
    seen: list[FleetSnapshot] = []
    decide = policy.decide

    def spying(fleet: FleetSnapshot) -> MigrationPlan:
        seen.append(fleet)
        return decide(fleet)

    policy.decide = spying  # type: ignore[method-assign]
    result = run_scenario(spec, population, policy, rng=run_rng)
    return seen, population, result


def test_twin_injects_the_real_effect_and_declares_only_the_declared_one() -> None:
    seen, population, result = _run({})
    seen_other, population_other, _ = _run({"events.0.actual_multiplier": 1.8})
    base = resolve_for_policy("bitbrains-rnd", policy="threshold", overrides={**SHORT, "duration_s": 72_000.0})
    plain = make_population(base, load_settings(), seed_streams(base.seed)[0])

    assert result.summary["steps"] == 240
    # The real effect is in the demand the twin replays, inside the window only.
    cpu, raw = population.demand.cpu_util, plain.demand.cpu_util
    np.testing.assert_array_equal(cpu[:, :PEAK_START_STEP], raw[:, :PEAK_START_STEP])
    full = slice(PEAK_START_STEP + 12, 228)  # after the 1 h ramp, before it fades
    np.testing.assert_allclose(cpu[:, full], np.minimum(raw[:, full] * 1.3, np.maximum(raw[:, full], 1.0)), rtol=1e-6)
    assert not np.array_equal(population_other.demand.cpu_util, cpu)

    # The policy is told the declaration, the same whatever the actual multiplier.
    declared = seen[0].declared_events
    assert [e.name for e in declared] == [
        "weekly-peak-1", "launch", "db-maintenance", "newsletter", "flash-sale", "clearance", "weekly-peak-2"
    ]  # fmt: skip
    assert declared[0].multiplier == 1.5 and declared[0].instance_ids is None
    maintenance = declared[2]
    assert maintenance.multiplier == 0.0 and maintenance.instance_ids is not None
    assert len(maintenance.instance_ids) == 20  # 25 % of 80, a seeded draw
    assert all(f.declared_events == declared for f in seen + seen_other)
    assert all(f.history_step_s == 300.0 for f in seen)
    before = [f for f in seen if f.now_s < PEAK_START_STEP * 300.0]
    before_other = [f for f in seen_other if f.now_s < PEAK_START_STEP * 300.0]
    for a, b in zip(before, before_other, strict=True):
        np.testing.assert_array_equal(a.instance_cpu_history, b.instance_cpu_history)


@pytest.fixture
def settings(traces_root: Path, tmp_path: Path) -> Settings:
    return Settings(
        traces_dir=traces_root,
        cache_dir=tmp_path / "cache",
        trace_mirror_url=None,
        results_dir=tmp_path / "results",
        ci=False,
    )


@pytest.mark.slow
def test_tiny_forecast_eval_on_the_scenario(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["forecast-eval", "--scenario", "bitbrains-campaign", "--forecasters", "seasonal_naive,arima"]
    tiny = ["--series", "2", "--origins", "1", "--event-origins", "2", "--horizons", "1,3", "--history", "300"]
    assert main([*argv, *tiny, "--set", "workload.instances=40"], settings=settings) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(settings.results_dir / "forecast-eval-bitbrains-campaign" / "forecast_eval_events.csv")
    assert set(table["window"]) == {"change", "event", "rest", "all"}
    assert set(table.loc[table["forecaster"] == "arima", "exog"]) == {
        "none", "calendar", "events", "calendar+events", "events-scaled"
    }  # fmt: skip
    assert set(table.loc[table["forecaster"] == "seasonal_naive", "exog"]) == {"none", "events-scaled"}
    events = table[(table["window"] == "event") & (table["horizon"] == 1)]
    assert (events["n"] > 0).all()  # the event origins put forecast targets inside declared windows
    assert table.loc[table["window"] == "all", "mase"].notna().all()
    assert "| arima | events |" in out


def test_scenario_options_are_one_line_errors(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast-eval", "--scenario", "bitbrains-campaign", "--forecasters", "lstm"], settings=settings) == 2
    assert "with --scenario choose from" in capsys.readouterr().err
    assert main(["forecast-eval", "--event-origins", "2"], settings=settings) == 2
    assert "--event-origins: only with --scenario" in capsys.readouterr().err
    assert main(["forecast-eval", "--scenario", "no-such-scenario"], settings=settings) == 2
    assert "no-such-scenario" in capsys.readouterr().err
