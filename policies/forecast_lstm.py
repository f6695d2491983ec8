"""An LSTM demand forecaster: trained offline on training traces, applied to the whole fleet at once.

One small global network serves every instance. It reads the last ``window`` samples of a series
(scaled by that window's own mean and spread, so one network fits a 5 % VM and a 90 % VM alike), and
the exogenous features of those steps and of the ``horizon`` steps to come, and outputs a Gaussian
per future step (mean and log-variance, trained by negative log-likelihood), hence intervals at any
level. Inference is one batched forward pass over all series.

Training (:func:`train_lstm`) happens offline, on training instances and training time only; the
result is an :class:`LstmModel` saved as an artefact (:meth:`LstmModel.save`) and loaded by the
policy (:meth:`LstmModel.load`), which refuses an artefact of another format version or with
shapes that disagree with its own configuration, naming the file and the field. Retraining is
``mirrortwin forecast-eval --save-lstm DIR`` (see ``docs/forecasting.md``).

Randomness (weight initialisation, minibatch sampling) comes from an injected
``numpy.random.Generator``; torch's generator is seeded from it inside a forked RNG state, so the same
seed gives the same weights and nothing global is disturbed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from policies.forecasting import (
    Exogenous,
    FloatArray,
    Forecast,
    ForecastInputError,
    check_history,
    check_horizon,
    check_level,
    forward_fill,
    normal_interval,
)

FORMAT_VERSION = 1
"""Version of the saved artefact layout; bump it when :class:`LstmConfig` or the network changes."""

SCALE_FLOOR = 0.02
"""Smallest window spread used for scaling (in the series' units): a flat window is not blown up."""


class LstmArtefactError(ForecastInputError):
    """A saved LSTM cannot be used: missing, another format version, or shapes that disagree."""

    def __init__(self, path: Path | str, field_name: str, problem: str) -> None:
        super().__init__(field_name, f"{problem} (artefact {path})", "lstm")


@dataclass(frozen=True)
class LstmConfig:
    """Shape of the network; saved with the weights and checked on load.

    Attributes:
        window: Past steps the network reads.
        horizon: Future steps it forecasts (``forecast(h)`` needs ``h <= horizon``).
        hidden: LSTM hidden size.
        exog_names: Names of the exogenous columns it was trained with (empty: none).
    """

    window: int = 48
    horizon: int = 12
    hidden: int = 32
    exog_names: tuple[str, ...] = ()

    @property
    def n_exog(self) -> int:
        """Number of exogenous columns."""
        return len(self.exog_names)


class _Network(nn.Module):
    """LSTM over the window, then a small head that also sees the horizon's exogenous features."""

    def __init__(self, config: LstmConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(input_size=1 + config.n_exog, hidden_size=config.hidden, batch_first=True)
        head_in = config.hidden + config.horizon * config.n_exog
        self.head = nn.Sequential(nn.Linear(head_in, 64), nn.ReLU(), nn.Linear(64, 2 * config.horizon))

    def forward(self, past: torch.Tensor, future_exog: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (hidden, _) = self.lstm(past)
        features = torch.cat([hidden[-1], future_exog.flatten(1)], dim=1)
        out = self.head(features)
        mean, log_var = out[:, : self.config.horizon], out[:, self.config.horizon :]
        return mean, log_var.clamp(-12.0, 8.0)


def _scale(windows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-window centre and spread (floored) used to normalise inputs and targets."""
    centre = windows.mean(axis=1)
    spread = np.maximum(windows.std(axis=1), SCALE_FLOOR)
    return centre, spread


def _inputs(windows: FloatArray, past_exog: FloatArray | None, centre: FloatArray, spread: FloatArray) -> torch.Tensor:
    """Build the (batch, window, 1 + k) input tensor."""
    scaled = ((windows - centre[:, None]) / spread[:, None])[:, :, None]
    if past_exog is not None:
        scaled = np.concatenate([scaled, past_exog], axis=2)
    return torch.as_tensor(scaled, dtype=torch.float32)


@dataclass
class LstmModel:
    """A trained network with its configuration: what is saved, loaded and deployed."""

    config: LstmConfig
    network: _Network

    def save(self, path: Path | str) -> Path:
        """Write the artefact (configuration, format version, weights) to ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "state_dict": self.network.state_dict(),
        }
        torch.save(payload, target)
        return target

    @classmethod
    def load(cls, path: Path | str) -> LstmModel:
        """Read an artefact written by :meth:`save`.

        Raises:
            LstmArtefactError: Missing file, unreadable content, another format version, or weights
                whose shapes disagree with the saved configuration; the message names file and field.
        """
        source = Path(path)
        if not source.is_file():
            raise LstmArtefactError(source, "path", "no such file; train one with mirrortwin forecast-eval --save-lstm")
        try:
            payload = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a corrupt file
            raise LstmArtefactError(source, "path", f"not a saved LSTM ({type(exc).__name__})") from None
        if not isinstance(payload, dict) or "format_version" not in payload:
            raise LstmArtefactError(source, "format_version", "missing; not an artefact of this project")
        if payload["format_version"] != FORMAT_VERSION:
            raise LstmArtefactError(
                source, "format_version", f"is {payload['format_version']}, this code reads {FORMAT_VERSION}; retrain"
            )
        try:
            raw = dict(payload["config"])
            config = LstmConfig(
                window=int(raw["window"]),
                horizon=int(raw["horizon"]),
                hidden=int(raw["hidden"]),
                exog_names=tuple(str(n) for n in raw["exog_names"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LstmArtefactError(source, "config", f"incomplete ({exc})") from None
        network = _Network(config)
        expected = network.state_dict()
        state = payload.get("state_dict", {})
        for key, tensor in expected.items():
            if key not in state:
                raise LstmArtefactError(source, f"state_dict.{key}", "missing")
            if tuple(state[key].shape) != tuple(tensor.shape):
                raise LstmArtefactError(
                    source,
                    f"state_dict.{key}",
                    f"has shape {tuple(state[key].shape)}, the saved config implies {tuple(tensor.shape)}",
                )
        network.load_state_dict(state)
        network.eval()
        return cls(config, network)

    def predict(self, history: FloatArray, exog: Exogenous | None, h: int, level: float) -> Forecast:
        """Forecast ``h`` steps for every row of ``history`` in one forward pass."""
        cfg = self.config
        y = forward_fill(history)
        n, t = y.shape
        empty = np.isnan(y[:, -1])
        windows = np.zeros((n, cfg.window))
        take = min(t, cfg.window)
        windows[:, -take:] = np.where(np.isnan(y[:, -take:]), 0.0, y[:, -take:])
        if take < cfg.window:  # a short history: pad with its first value
            windows[:, : cfg.window - take] = windows[:, cfg.window - take : cfg.window - take + 1]
        past_exog = future_exog = None
        if cfg.n_exog:
            if exog is None or exog.names != cfg.exog_names:
                got = exog.names if exog is not None else ()
                raise ForecastInputError("exog", f"the model was trained with {cfg.exog_names}, got {got}", "lstm")
            if exog.values.shape[0] < t + cfg.horizon:
                raise ForecastInputError(
                    "exog", f"must cover the history and {cfg.horizon} future steps ({t + cfg.horizon} rows)", "lstm"
                )
            rows = exog.values[max(0, t - cfg.window) : t]
            if rows.shape[0] < cfg.window:
                rows = np.vstack([np.repeat(rows[:1], cfg.window - rows.shape[0], axis=0), rows])
            past_exog = np.broadcast_to(rows, (n, *rows.shape))
            future_exog = np.broadcast_to(exog.values[t : t + cfg.horizon], (n, cfg.horizon, cfg.n_exog))
        centre, spread = _scale(windows)
        past = _inputs(windows, past_exog, centre, spread)
        fut = torch.as_tensor(
            np.ascontiguousarray(future_exog) if future_exog is not None else np.zeros((n, cfg.horizon, 0)),
            dtype=torch.float32,
        )
        with torch.inference_mode():
            mean, log_var = self.network(past, fut)
        mean_np = mean.numpy().astype(np.float64)[:, :h] * spread[:, None] + centre[:, None]
        sigma = np.exp(0.5 * log_var.numpy().astype(np.float64)[:, :h]) * spread[:, None]
        mean_np[empty] = np.nan
        return normal_interval(mean_np, sigma, level)


def train_lstm(
    series: FloatArray,
    *,
    rng: np.random.Generator,
    exog: Exogenous | None = None,
    config: LstmConfig | None = None,
    steps: int = 300,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
) -> LstmModel:
    """Train a network on ``series`` (training instances x training time, NaN allowed).

    Windows are drawn uniformly from every (series, time) where a full window and horizon fit and
    the target is fully observed. Nothing else is looked at: the caller decides which instances and
    which time are "training".

    Args:
        series: (instances, steps) training data.
        rng: Source of every random draw (weight initialisation, minibatches).
        exog: Exogenous features on the same steps as ``series`` (rows = steps), or None.
        config: Network shape; its ``exog_names`` are replaced by ``exog``'s names.
        steps: Optimiser steps.
        batch_size: Windows per step.
        learning_rate: Adam's learning rate.
    """
    y = check_history(series, "lstm")
    base = config or LstmConfig()
    cfg = LstmConfig(base.window, base.horizon, base.hidden, exog.names if exog is not None else ())
    t = y.shape[1]
    span = cfg.window + cfg.horizon
    if t < span:
        raise ForecastInputError("series", f"has {t} steps, training needs at least window + horizon = {span}", "lstm")
    if exog is not None and exog.values.shape[0] < t:
        raise ForecastInputError("exog", f"has {exog.values.shape[0]} rows for {t} training steps", "lstm")
    filled = forward_fill(y)
    target_ok = np.lib.stride_tricks.sliding_window_view(~np.isnan(y), cfg.horizon, axis=1)[:, cfg.window :].all(axis=2)
    starts = np.argwhere(target_ok & ~np.isnan(filled[:, : t - span + 1]))
    if starts.size == 0:
        raise ForecastInputError("series", "has no fully observed window + horizon to train on", "lstm")
    seed = int(rng.integers(0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = _Network(cfg)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
    offsets = np.arange(span)
    network.train()
    for _ in range(steps):
        pick = starts[rng.integers(0, len(starts), size=batch_size)]
        rows, cols = pick[:, 0], pick[:, 1]
        block = filled[rows[:, None], cols[:, None] + offsets[None, :]]
        windows, targets = block[:, : cfg.window], block[:, cfg.window :]
        centre, spread = _scale(windows)
        past_exog = future = None
        if exog is not None:
            ex = exog.values[cols[:, None] + offsets[None, :]]
            past_exog, future = ex[:, : cfg.window], ex[:, cfg.window :]
        past = _inputs(windows, past_exog, centre, spread)
        fut = torch.as_tensor(
            future if future is not None else np.zeros((batch_size, cfg.horizon, 0)), dtype=torch.float32
        )
        target = torch.as_tensor((targets - centre[:, None]) / spread[:, None], dtype=torch.float32)
        mean, log_var = network(past, fut)
        loss = nn.functional.gaussian_nll_loss(mean, target, log_var.exp())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network.eval()
    return LstmModel(cfg, network)


class LstmForecaster:
    """The :class:`LstmModel` behind the common forecaster interface.

    ``fit`` does not train (training belongs offline, on training data): it only takes the history
    the next forecast conditions on. The model comes ready (``model=``) or from an artefact
    (``artefact=``).

    Args:
        model: A trained model.
        artefact: Path of a saved model, loaded when ``model`` is not given.
    """

    name = "lstm"
    uses_exog = True

    def __init__(self, model: LstmModel | None = None, artefact: Path | str | None = None) -> None:
        if model is None and artefact is None:
            raise ForecastInputError(
                "artefact", "the LSTM needs a trained model: pass model= or artefact= (see docs/forecasting.md)", "lstm"
            )
        self.model = model if model is not None else LstmModel.load(artefact)  # type: ignore[arg-type]

    def fit(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Keep ``history`` (and ``exog``) for the next forecast; the weights stay as trained."""
        return self.observe(history, exog)

    def observe(self, history: FloatArray, exog: Exogenous | None = None) -> Self:
        """Same as :meth:`fit`."""
        self.history_ = check_history(history, self.name)
        self.exog_ = exog
        return self

    def forecast(self, h: int, level: float = 0.95) -> Forecast:
        """One batched forward pass over every series."""
        h = check_horizon(h, self.name, self.model.config.horizon)
        level = check_level(level, self.name)
        return self.model.predict(self.history_, self.exog_, h, level)

    @staticmethod
    def describe(model: LstmModel) -> dict[str, Any]:
        """The configuration as plain values (for reports)."""
        return asdict(model.config)
