"""Speed of forecasting 1,000 instances one control step ahead: ARIMA (fixed order) and the LSTM.

What a control step costs: the forecaster has been fitted (ARIMA coefficients estimated, the LSTM
trained offline); at each step it is given the newest history (``observe``) and asked for one step
ahead (``forecast(1)``) for the whole fleet. Targets (issue 5): under 1 s with ARIMA, under 0.1 s
with the LSTM, for 1,000 instances.

The baselines, in the same script on the same data, timed on ``--sm-series`` series and scaled to
the fleet: statsmodels' ``ARIMA`` with the same order fitted per series and asked for one step
("refit"), and the same fitted statsmodels models re-applied to the newest window without
re-estimation (``results.apply``, "apply": the like-for-like of ``observe``). The script also times
statsforecast's estimation of all 1,000 series (``ArimaForecaster.fit``) against statsmodels' refit.

Data: 1,000 windows of ``--history`` steps of real Bitbrains CPU (400 VMs, windows from different
days), or AR(1) series when the traces are absent (printed).

Usage: ``PYTHONPATH=. .venv/bin/python bench/bench_forecast.py [--instances 1000] [--history 576]
[--repeat 5] [--sm-series 40]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from policies.forecast_lstm import LstmConfig, LstmForecaster, train_lstm  # noqa: E402
from policies.forecasting import ArimaForecaster  # noqa: E402

ORDER = (1, 0, 1)


def fleet(n: int, history: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``n`` windows of ``history + 1`` steps (the extra step is the next control step's sample)."""
    from mirrortwin.config import load_settings

    settings = load_settings()
    try:
        from scenarios.traces.families import load_trace

        cpu = load_trace("bitbrains", None, settings.trace_roots, cache_dir=settings.cache_dir).cpu_util
        cpu = np.nan_to_num(cpu.astype(np.float64), nan=0.0)
        rows = rng.integers(0, cpu.shape[0], size=n)
        starts = rng.integers(0, cpu.shape[1] - history - 1, size=n)
        data = cpu[rows[:, None], starts[:, None] + np.arange(history + 1)[None, :]]
        return data, "Bitbrains rnd/2013-8 CPU windows"
    except Exception as exc:  # traces absent: synthetic AR(1) so the bench still runs
        y = np.zeros((n, history + 1))
        for t in range(1, history + 1):
            y[:, t] = 0.7 * y[:, t - 1] + rng.normal(size=n) * 0.05
        return y + 0.4, f"synthetic AR(1) ({type(exc).__name__}: traces not found)"


def median_time(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--history", type=int, default=576)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sm-series", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data, source = fleet(args.instances, args.history, rng)
    past, now = data[:, :-1], data[:, 1:]
    print(f"data: {source}; {args.instances} instances x {args.history} steps; ARIMA order {ORDER}")

    began = time.perf_counter()
    arima = ArimaForecaster(order=ORDER).fit(past)
    fit_s = time.perf_counter() - began
    arima_step = median_time(lambda: arima.observe(now).forecast(1), args.repeat)

    model = train_lstm(past[:200], rng=rng, config=LstmConfig(window=48, horizon=12, hidden=32), steps=20)
    lstm = LstmForecaster(model=model)
    lstm_step = median_time(lambda: lstm.observe(now).forecast(1), args.repeat)

    from statsmodels.tsa.arima import model as sm_arima

    def statsmodels_fleet() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row in now[: args.sm_series]:
                sm_arima.ARIMA(row, order=ORDER, trend="c").fit().forecast(1)

    sm_subset = median_time(statsmodels_fleet, 1)
    sm_fleet = sm_subset * args.instances / args.sm_series

    # Like-for-like with ``observe``: statsmodels keeps each fitted model and re-applies its
    # parameters to the newest window (``results.apply``) before forecasting, without re-estimating.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = [sm_arima.ARIMA(row, order=ORDER, trend="c").fit() for row in past[: args.sm_series]]

    def statsmodels_apply() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for res, row in zip(fitted, now[: args.sm_series], strict=True):
                res.apply(row).forecast(1)

    sm_apply = median_time(statsmodels_apply, 1) * args.instances / args.sm_series

    print("| what | seconds for the fleet | target | vs statsmodels refit | vs statsmodels apply |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| ARIMA{ORDER} one step (observe + forecast) | {arima_step:.4f} | < 1 "
        f"| {sm_fleet / arima_step:,.0f}x | {sm_apply / arima_step:,.0f}x |"
    )
    print(
        f"| LSTM one step (observe + forecast) | {lstm_step:.4f} | < 0.1 "
        f"| {sm_fleet / lstm_step:,.0f}x | {sm_apply / lstm_step:,.0f}x |"
    )
    print(f"| ARIMA{ORDER} estimation, statsforecast (fit) | {fit_s:.2f} | - | {sm_fleet / fit_s:.1f}x | - |")
    print(f"| statsmodels fit + forecast per series ({args.sm_series} timed, scaled) | {sm_fleet:.2f} | - | 1x | - |")
    print(f"| statsmodels apply + forecast per series ({args.sm_series} timed, scaled) | {sm_apply:.2f} | - | - | 1x |")


if __name__ == "__main__":
    main()
