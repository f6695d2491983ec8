"""The event backtest on synthetic demand: origins from the declared schedule, windows, what each variant knows."""

from __future__ import annotations

import numpy as np
import pytest

from mirrortwin.forecast_eval_events import EventBacktestConfig, ScenarioDemand, choose_origins, run_event_backtest
from policies.forecasting import ForecastInputError
from policies.scheduled_events import ScheduledEvent

STEP = 300.0
T = 1200


def demand(declared: float = 2.0, actual: float = 2.0) -> ScenarioDemand:
    """Four steady series at 20-35 % with a little noise; a campaign in the test half really multiplies them."""
    rng = np.random.default_rng(3)
    cpu = np.linspace(0.2, 0.35, 4)[:, None] + 0.002 * rng.standard_normal((4, T))
    start, end = 900, 960
    cpu[:, start:end] *= actual
    event = ScheduledEvent("sale", start * STEP, end * STEP, declared, kind="campaign")
    return ScenarioDemand("synthetic", tuple(f"vm-{i}" for i in range(4)), cpu, STEP, 0.0, (event,))


def config(**fields: object) -> EventBacktestConfig:
    base: dict[str, object] = {"scenario": "synthetic", "forecasters": ("naive",), "horizons": (1, 6)}
    base.update(n_series=4, n_origins=2, n_event_origins=4, history_steps=300)
    base.update(fields)
    return EventBacktestConfig(**base)  # type: ignore[arg-type]


def test_origins_cover_the_declared_window_and_stay_in_test_time() -> None:
    origins = choose_origins(demand(), config())
    assert origins.min() >= T // 2 and origins.max() <= T - 6
    assert {600, 1194} <= set(origins.tolist())  # evenly over the test half
    assert {895, 959} <= set(origins.tolist())  # from max_h - 1 steps before the start to the end


def test_declared_scaling_anticipates_an_accurately_declared_onset() -> None:
    table = run_event_backtest(config(), demand(), log=lambda _: None)
    change = table[(table["window"] == "change") & (table["horizon"] == 6)].set_index("exog")
    assert change.loc["events-scaled", "n"] > 0
    assert change.loc["events-scaled", "mae"] < 0.2 * change.loc["none", "mae"]
    assert set(table["exog"]) == {"none", "events-scaled"}  # naive takes no regressors


def test_the_backtest_never_reads_the_actual_effect_except_as_truth() -> None:
    """Forecasts depend on the declaration; the actual effect changes only the errors, not the inputs."""
    accurate = run_event_backtest(config(), demand(2.0, 2.0), log=lambda _: None)
    overstated = run_event_backtest(config(), demand(3.0, 2.0), log=lambda _: None)
    pick = (accurate["window"] == "change") & (accurate["horizon"] == 6) & (accurate["exog"] == "events-scaled")
    assert float(overstated.loc[pick, "mae"].iloc[0]) > float(accurate.loc[pick, "mae"].iloc[0])


def test_arima_variants_include_events_and_skip_the_calendar_without_a_day_of_history() -> None:
    table = run_event_backtest(config(forecasters=("arima",), history_steps=200), demand(), log=lambda _: None)
    assert set(table["exog"]) == {"none", "events", "events-scaled"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"forecasters": ("lstm",)}, "forecasters"), ({"horizons": (0,)}, "horizons"), ({"n_event_origins": -1},
     "n_event_origins"), ({"train_fraction": 0.95}, "train_fraction")],
)  # fmt: skip
def test_bad_configuration_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ForecastInputError, match=field):
        run_event_backtest(config(**fields), demand(), log=lambda _: None)
