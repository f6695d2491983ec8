"""The LSTM: seeded training is reproducible, artefacts round-trip, mismatches fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from policies.forecast_lstm import (
    FORMAT_VERSION,
    LstmArtefactError,
    LstmConfig,
    LstmForecaster,
    LstmModel,
    train_lstm,
)
from policies.forecasting import ForecastInputError, calendar_features

torch.set_num_threads(1)

CONFIG = LstmConfig(window=16, horizon=4, hidden=8)


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(200)
    return 0.5 + 0.2 * np.sin(2 * np.pi * t / 24)[None, :] + rng.normal(size=(6, 200)) * 0.02


def _train(series: np.ndarray, seed: int, exog=None) -> LstmModel:
    return train_lstm(series, rng=np.random.default_rng(seed), exog=exog, config=CONFIG, steps=15, batch_size=32)


def test_same_seed_same_weights_other_seed_other_weights(series: np.ndarray) -> None:
    a, b, c = _train(series, 1), _train(series, 1), _train(series, 2)
    for (key, wa), wb in zip(a.network.state_dict().items(), b.network.state_dict().values(), strict=True):
        assert torch.equal(wa, wb), key
    assert any(
        not torch.equal(wa, wc)
        for wa, wc in zip(a.network.state_dict().values(), c.network.state_dict().values(), strict=True)
    )


def test_forecast_shapes_intervals_and_nan_rows(series: np.ndarray) -> None:
    model = _train(series, 1)
    history = series[:, :100].copy()
    history[1, :95] = np.nan  # shorter than the window
    history[2, :] = np.nan
    fc = LstmForecaster(model=model).fit(history).forecast(3, level=0.8)
    assert fc.mean.shape == (6, 3)
    assert np.isnan(fc.mean[2]).all()
    ok = np.isfinite(fc.mean)
    assert ok.sum() == 15
    assert (fc.lower[ok] <= fc.mean[ok]).all() and (fc.mean[ok] <= fc.upper[ok]).all()
    with pytest.raises(ForecastInputError, match=r"\.h: 5 is beyond"):
        LstmForecaster(model=model).fit(history).forecast(5)


def test_artefact_round_trip(series: np.ndarray, tmp_path: Path) -> None:
    exog = calendar_features(0.0, 3600.0, 204, cycles=("day",))
    model = _train(series, 3, exog=exog.rows(0, 200))
    path = model.save(tmp_path / "m.pt")
    loaded = LstmModel.load(path)
    assert loaded.config == model.config
    history, ex = series[:, :120], exog.rows(0, 124)
    a = LstmForecaster(model=model).fit(history, ex).forecast(4)
    b = LstmForecaster(artefact=path).fit(history, ex).forecast(4)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.upper, b.upper)
    with pytest.raises(ForecastInputError, match="trained with"):
        LstmForecaster(model=loaded).fit(history).forecast(1)


def test_artefact_mismatch_errors_name_file_and_field(series: np.ndarray, tmp_path: Path) -> None:
    model = _train(series, 1)
    path = model.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(LstmArtefactError, match=r"format_version: is 2.*future\.pt"):
        LstmModel.load(tmp_path / "future.pt")
    payload["format_version"] = FORMAT_VERSION
    payload["config"]["hidden"] = 16
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(LstmArtefactError, match=r"state_dict\.lstm\.weight_ih_l0: has shape .*shape\.pt"):
        LstmModel.load(tmp_path / "shape.pt")
    with pytest.raises(LstmArtefactError, match="no such file"):
        LstmModel.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(LstmArtefactError, match="not a saved LSTM"):
        LstmModel.load(tmp_path / "junk.pt")


def test_needs_a_model() -> None:
    with pytest.raises(ForecastInputError, match="needs a trained model"):
        LstmForecaster()
