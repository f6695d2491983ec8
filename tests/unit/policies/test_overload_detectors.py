"""CloudSim 3.0.3 overload detectors on hand-computed histories (reference cloudsim-planetlab.md §1.9)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.overload_detectors import (
    HISTORY_LENGTH,
    HostLoad,
    InterQuartileRange,
    LocalRegression,
    LocalRegressionRobust,
    MedianAbsoluteDeviation,
    NullDetector,
    OverloadDetector,
    StaticThreshold,
    bisquare_weights,
    cloudsim_history,
    cloudsim_weighted_line,
    iqr,
    mad,
    overloaded_after_adding,
    overloaded_hosts,
)
from tests.fakes.fleet_builder import FleetBuilder


def load(histories: list[list[float]], util: list[float], max_ram: list[float] | None = None) -> HostLoad:
    """Hosts with oldest-first histories (padded on the old side with NaN to a common width)."""
    width = max(len(h) for h in histories)
    rows = [[np.nan] * (width - len(h)) + list(h) for h in histories]
    return HostLoad(
        np.array(util, dtype=np.float64),
        np.array(rows, dtype=np.float64),
        np.zeros(len(util)) if max_ram is None else np.array(max_ram, dtype=np.float64),
    )


def oldest_first(newest_first: list[float]) -> list[float]:
    return newest_first[::-1]


# ----- history conversion ---------------------------------------------------------------------------


def test_history_is_reversed_and_trimmed_of_old_zeros_only() -> None:
    values, length = cloudsim_history(np.array([[np.nan, 0.0, 0.2, 0.0, 0.5]]))
    assert values[0, :4].tolist() == [0.5, 0.0, 0.2, 0.0]
    assert length.tolist() == [3]  # the zero between 0.5 and 0.2 stays; the oldest zero goes


def test_all_zero_history_has_length_one_as_count_non_zero_beginning_returns() -> None:
    _, length = cloudsim_history(np.array([[np.nan, np.nan], [0.0, 0.0]]))
    assert length.tolist() == [1, 1]


def test_only_the_newest_thirty_samples_count() -> None:
    history = np.concatenate([np.full(10, 0.9), np.arange(1, HISTORY_LENGTH + 1) / 100.0])[None, :]
    values, length = cloudsim_history(history)
    assert length.tolist() == [HISTORY_LENGTH]
    assert values[0, 0] == pytest.approx(0.30) and values[0, -1] == pytest.approx(0.01)


# ----- THR and Null ---------------------------------------------------------------------------------


def test_static_threshold_is_strictly_above() -> None:
    hosts = load([[0.0], [0.0], [0.0]], [0.8, 0.8000001, 1.2])
    assert StaticThreshold(0.8).overloaded(hosts).tolist() == [False, True, True]


def test_null_detector_never_flags() -> None:
    assert NullDetector().overloaded(load([[1.0]], [5.0])).tolist() == [False]


# ----- IQR ------------------------------------------------------------------------------------------


def test_iqr_uses_java_round_half_up_quartile_indices() -> None:
    # n = 9: q1 = round(2.5) - 1 = 2, q3 = round(7.5) - 1 = 7 (Python's round would give 1 and 7).
    assert iqr(np.arange(9.0, 0.0, -1.0)[None, :], np.array([9])).tolist() == [8.0 - 3.0]
    # n = 12: q1 = round(3.25) - 1 = 2, q3 = round(9.75) - 1 = 9.
    assert iqr(np.arange(1.0, 13.0)[None, :], np.array([12])).tolist() == [10.0 - 3.0]


def test_iqr_threshold_from_twelve_samples() -> None:
    history = oldest_first([k / 20 for k in range(12, 0, -1)])  # sorted 0.05 .. 0.60
    # IQR = H[9] - H[2] = 0.50 - 0.15 = 0.35, T = 1 - 1.5 * 0.35 = 0.475
    hosts = load([history, history], [0.48, 0.47])
    assert InterQuartileRange(1.5).thresholds(hosts) == pytest.approx([0.475, 0.475])
    assert InterQuartileRange(1.5).overloaded(hosts).tolist() == [True, False]


def test_iqr_falls_back_to_thr_07_below_twelve_samples() -> None:
    short = [0.1] * 11
    hosts = load([short, short], [0.71, 0.69])
    assert np.isnan(InterQuartileRange().thresholds(hosts)).all()
    assert InterQuartileRange().overloaded(hosts).tolist() == [True, False]


def test_zero_inside_history_still_counts_towards_twelve() -> None:
    # countNonZeroBeginning measures up to the oldest non-zero sample, not the first zero.
    history = oldest_first([0.5] * 5 + [0.0] + [0.5] * 6)
    hosts = load([history], [0.71])
    assert not np.isnan(InterQuartileRange().thresholds(hosts)).any()


def test_old_zeros_are_trimmed_before_counting() -> None:
    history = [0.0] * 5 + [0.5] * 11  # 16 samples, but the 5 oldest are zero: 11 remain
    assert InterQuartileRange().overloaded(load([history], [0.71])).tolist() == [True]


# ----- MAD ------------------------------------------------------------------------------------------


def test_mad_of_one_to_twelve() -> None:
    # median 6.5; |deviations| sorted 0.5, 0.5, 1.5, 1.5, ... 5.5, 5.5 -> median 3.0
    assert mad(np.arange(1.0, 13.0)[None, :], np.array([12])).tolist() == [3.0]


def test_mad_threshold_and_fallback() -> None:
    history = [k / 10 for k in range(1, 13)]  # MAD = 0.3, T = 1 - 2.5 * 0.3 = 0.25
    hosts = load([history, history, [0.1] * 11], [0.26, 0.24, 0.71])
    assert MedianAbsoluteDeviation(2.5).thresholds(hosts)[:2] == pytest.approx([0.25, 0.25])
    assert MedianAbsoluteDeviation(2.5).overloaded(hosts).tolist() == [True, False, True]


def test_single_spike_leaves_mad_at_zero() -> None:
    hosts = load([[0.5] * 11 + [0.9]] * 2, [0.99, 1.01])
    assert MedianAbsoluteDeviation().thresholds(hosts).tolist() == [1.0, 1.0]
    assert MedianAbsoluteDeviation().overloaded(hosts).tolist() == [False, True]


# ----- LR / LRR -------------------------------------------------------------------------------------


RISING = [0.30 + 0.05 * x for x in range(1, 11)]  # a + b x with a = 0.3, b = 0.05 at x = 1..10


def test_lr_predicts_one_migration_interval_ahead_of_the_largest_vm() -> None:
    # max RAM 0 -> x = 10 -> 0.80 * 1.2 = 0.96; 1740 MB -> 27.84 s -> x = 11 -> 0.85 * 1.2 = 1.02;
    # 20 GB -> 320 s -> two intervals -> x = 12 -> 0.90 * 1.2 = 1.08.
    hosts = load([RISING] * 3, [0.0] * 3, [0.0, 1740e6, 20e9])
    assert LocalRegression(1.2).predictions(hosts) == pytest.approx([0.96, 1.02, 1.08])
    assert LocalRegression(1.2).overloaded(hosts).tolist() == [False, True, True]


def test_lr_overloaded_at_exactly_one() -> None:
    assert LocalRegression(1.0).overloaded(load([[1.0] * 10], [0.0])).tolist() == [True]


def test_lr_uses_only_the_newest_ten_samples() -> None:
    noisy_past = [0.9, 0.0, 0.7, 0.1, 0.95]
    hosts = load([noisy_past + RISING, RISING], [0.0, 0.0], [1740e6, 1740e6])
    first, second = LocalRegression().predictions(hosts)
    assert first == pytest.approx(second)


def test_lr_falls_back_to_thr_07_below_ten_samples() -> None:
    hosts = load([[0.1] * 9, [0.1] * 9, [0.0] * 20 + [0.1] * 9], [0.71, 0.69, 0.71])
    assert np.isnan(LocalRegression().predictions(hosts)).all()
    assert LocalRegression().overloaded(hosts).tolist() == [True, False, True]


def test_weights_apply_only_when_forty_percent_are_not_positive() -> None:
    y = np.array([[1.0 + x for x in range(1, 11)]])
    ungated = cloudsim_weighted_line(y, np.ones((1, 10)))
    assert (ungated[0][0], ungated[1][0]) == pytest.approx((1.0, 1.0))
    gated = cloudsim_weighted_line(y, np.array([[0.0] * 4 + [1.0] * 6]))
    assert gated[1][0] != pytest.approx(1.0)  # x and y scaled by sqrt(w): a different line


def test_bisquare_weights_are_positive_so_the_gate_stays_closed() -> None:
    residuals = np.random.default_rng(3).normal(size=(50, 10))
    assert (bisquare_weights(residuals) > 0).all()


def test_lrr_coincides_with_lr_on_non_degenerate_data() -> None:
    rng = np.random.default_rng(7)
    histories = np.clip(rng.normal(0.6, 0.2, size=(200, HISTORY_LENGTH)), 0.01, None)
    hosts = HostLoad(rng.uniform(0, 1, 200), histories, rng.choice([613e6, 1740e6, 20e9], 200))
    lr, lrr = LocalRegression().predictions(hosts), LocalRegressionRobust().predictions(hosts)
    assert np.array_equal(lr, lrr)
    assert np.array_equal(LocalRegression().overloaded(hosts), LocalRegressionRobust().overloaded(hosts))


# ----- vectorisation and the fleet view -------------------------------------------------------------


DETECTORS: list[OverloadDetector] = [
    NullDetector(),
    StaticThreshold(0.8),
    InterQuartileRange(),
    MedianAbsoluteDeviation(),
    LocalRegression(),
    LocalRegressionRobust(),
]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_all_hosts_at_once_equals_one_host_at_a_time(detector: OverloadDetector) -> None:
    rng = np.random.default_rng(11)
    n = 40
    lengths = rng.integers(0, 35, n)
    history = rng.uniform(0.0, 1.0, (n, 34))
    history[np.arange(34)[None, :] < 34 - lengths[:, None]] = np.nan
    hosts = HostLoad(rng.uniform(0.4, 1.1, n), history, rng.choice([0.0, 1740e6], n))
    together = detector.overloaded(hosts)
    alone = [
        bool(detector.overloaded(HostLoad(hosts.util[[h]], hosts.history[[h]], hosts.max_ram_bytes[[h]]))[0])
        for h in range(n)
    ]
    assert together.tolist() == alone


def test_fleet_view_sums_instance_histories_and_takes_largest_ram() -> None:
    fleet = (
        FleetBuilder()
        .host("h0", capacity_mips=2000.0)
        .host("h1", capacity_mips=2000.0)
        .instance("a", "h0", request_mips=1000.0, ram_bytes=613e6)
        .instance("b", "h0", request_mips=800.0, ram_bytes=1740e6)
        .build()
    )
    fleet = dataclasses.replace(fleet, instance_cpu_history=np.array([[0.5, 1.0], [np.nan, 0.8]]))
    hosts = HostLoad.of(fleet)
    assert hosts.util.tolist() == [0.9, 0.0]
    assert hosts.history[0].tolist() == [0.25, 0.9]
    assert np.isnan(hosts.history[1]).all()
    assert hosts.max_ram_bytes.tolist() == [1740e6, 0.0]
    assert overloaded_hosts(StaticThreshold(0.8), fleet).tolist() == [True, False]


def test_after_adding_an_instance_its_history_moves_with_it() -> None:
    builder = FleetBuilder().host("busy", capacity_mips=1000.0).host("empty", capacity_mips=1000.0)
    builder.instance("old", "busy", request_mips=500.0, capacity_mips=1000.0)
    builder.instance("new", None, request_mips=400.0, capacity_mips=500.0)
    fleet = builder.build()
    steady = np.full(12, 0.5)
    rising = np.linspace(0.2, 0.8, 12)
    fleet = dataclasses.replace(fleet, instance_cpu_history=np.vstack([steady, rising]))
    after = HostLoad.of(fleet).with_instance(fleet, np.array([0, 1]), 1)
    assert after.util == pytest.approx([0.9, 0.4])
    assert after.history[0] == pytest.approx(0.5 + rising * 0.5)
    assert after.history[1] == pytest.approx(rising * 0.5)
    # Both hosts now have an IQR of 7/11 * 0.3 = 0.19, so T = 0.714: "busy" (0.9) is over, "empty" (0.4) not.
    assert overloaded_after_adding(InterQuartileRange(), fleet, np.array([0, 1]), 1).tolist() == [True, False]
    assert overloaded_after_adding(StaticThreshold(0.95), fleet, np.array([0, 1]), 1).tolist() == [False, False]


def test_extra_mips_changes_utilisation_but_not_history() -> None:
    fleet = FleetBuilder().host("h0", capacity_mips=1000.0).instance("a", "h0", request_mips=500.0).build()
    after = HostLoad.of(fleet).with_extra_mips(fleet, np.array([0]), np.array([350.0]))
    assert after.util.tolist() == [0.85]
    assert after.history.tolist() == HostLoad.of(fleet).history.tolist()


# ----- properties -----------------------------------------------------------------------------------


histories = st.lists(st.floats(0.0, 2.0), min_size=12, max_size=40)


@settings(max_examples=200, deadline=None)
@given(histories)
def test_statistical_thresholds_never_exceed_one(history: list[float]) -> None:
    hosts = load([history], [0.5])
    for detector in (InterQuartileRange(), MedianAbsoluteDeviation()):
        threshold = detector.thresholds(hosts)[0]
        assert np.isnan(threshold) or threshold <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 2.0), st.integers(12, 30))
def test_constant_history_gives_threshold_one(level: float, n: int) -> None:
    hosts = load([[level] * n], [0.5])
    assert InterQuartileRange().thresholds(hosts).tolist() == [1.0]
    assert MedianAbsoluteDeviation().thresholds(hosts).tolist() == [1.0]
