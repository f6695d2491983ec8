"""``mirrortwin forecast-eval`` end to end on a tiny configuration of the real traces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from mirrortwin.cli import main
from mirrortwin.config import Settings

pytestmark = pytest.mark.traces


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
def test_tiny_backtest_writes_table_plot_and_lstm(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    tiny = ["--series", "3", "--origins", "2", "--train-series", "6", "--lstm-steps", "3", "--horizons", "1,3"]
    argv = ["forecast-eval", "--families", "planetlab,bitbrains", "--forecasters", "naive,seasonal_naive,arima,lstm"]
    assert main([*argv, *tiny, "--save-lstm", str(tmp_path / "lstm")], settings=settings) == 0
    out = capsys.readouterr().out
    folder = settings.results_dir / "forecast-eval"
    table = pd.read_csv(folder / "forecast_eval.csv")
    assert set(table["family"]) == {"planetlab", "bitbrains"}
    assert set(table["horizon"]) == {1, 3}
    # PlanetLab's one-day files cover no full day before the origins: no calendar rows there.
    assert set(table.loc[table["family"] == "planetlab", "exog"]) == {"none"}
    assert {"none", "day"} <= set(table.loc[table["family"] == "bitbrains", "exog"])
    assert table[["mae", "rmse", "mase"]].notna().all().all()
    assert (folder / "forecast_eval.png").is_file()
    assert "| bitbrains | arima | day |" in out
    assert sorted(p.name for p in (tmp_path / "lstm").iterdir()) == [
        "lstm-bitbrains-calendar.pt",
        "lstm-bitbrains.pt",
        "lstm-planetlab.pt",
    ]
    # Reusing the saved artefacts gives the same LSTM rows.
    again = [*argv, *tiny, "--load-lstm", str(tmp_path / "lstm"), "--out", str(tmp_path / "again")]
    assert main(again, settings=settings) == 0
    reloaded = pd.read_csv(tmp_path / "again" / "forecast_eval.csv")
    cols = ["family", "forecaster", "exog", "horizon", "mae", "mase"]
    pd.testing.assert_frame_equal(table[cols], reloaded[cols])


def test_bad_options_are_one_line_errors(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast-eval", "--families", "alibaba"], settings=settings) == 2
    assert "forecaster.families: choose from planetlab, bitbrains, azure" in capsys.readouterr().err
    assert main(["forecast-eval", "--horizons", "1,x"], settings=settings) == 2
    assert "--horizons '1,x'" in capsys.readouterr().err
