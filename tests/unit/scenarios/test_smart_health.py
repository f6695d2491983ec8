"""Health readings bootstrapped from real drive rows: reproducible, from the right pool, and checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scenarios.smart_health import SmartHealthSampler

FEATURES = ("reallocated_sectors", "pending_sectors")
HEALTHY = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
FAILED = np.array([[100.0, 40.0], [300.0, 8.0]])


def _sampler() -> SmartHealthSampler:
    return SmartHealthSampler(HEALTHY, FAILED, FEATURES)


def test_same_seed_same_readings_and_other_seed_differs():
    mask = np.arange(200) % 3 == 0
    a = _sampler().sample(np.random.default_rng(7), mask)
    b = _sampler().sample(np.random.default_rng(7), mask)
    c = _sampler().sample(np.random.default_rng(8), mask)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a.columns) == list(FEATURES) and len(a) == 200


def test_rows_come_whole_from_the_right_pool():
    mask = np.arange(300) % 2 == 1
    readings = _sampler().sample(np.random.default_rng(1), mask).to_numpy()
    healthy_rows = {tuple(r) for r in HEALTHY}
    failed_rows = {tuple(r) for r in FAILED}
    assert all(tuple(r) in failed_rows for r in readings[mask])
    assert all(tuple(r) in healthy_rows for r in readings[~mask])
    assert {tuple(r) for r in readings[mask]} == failed_rows  # both failed rows get drawn


def test_closeness_interpolates_between_a_healthy_and_a_failed_draw():
    mask = np.ones(50, dtype=bool)
    at_zero = _sampler().sample(np.random.default_rng(3), mask, closeness=np.zeros(50)).to_numpy()
    assert {tuple(r) for r in at_zero} <= {tuple(r) for r in HEALTHY}
    half = _sampler().sample(np.random.default_rng(3), mask, closeness=np.full(50, 0.5)).to_numpy()
    assert (half >= 0).all() and (half <= FAILED.max(axis=0)).all()
    assert (half == np.round(half)).all()  # whole counts


def test_a_host_readings_do_not_depend_on_the_other_hosts():
    first = _sampler().sample(np.random.default_rng(5), [False, False, True]).iloc[0]
    again = _sampler().sample(np.random.default_rng(5), [False, True, False]).iloc[0]
    pd.testing.assert_series_equal(first, again)


def test_from_table_splits_on_failure():
    table = pd.DataFrame(
        {"failure": [0, 1, 0], "reallocated_sectors": [0.0, 9.0, 1.0], "pending_sectors": [0.0, 3.0, 0.0]}
    )
    sampler = SmartHealthSampler.from_table(table, FEATURES)
    assert sampler.failed.tolist() == [[9.0, 3.0]]
    assert len(sampler.healthy) == 2


@pytest.mark.parametrize(
    ("healthy", "failed", "closeness", "match"),
    [
        (np.zeros((0, 2)), FAILED, None, "healthy pool is empty"),
        (HEALTHY, np.array([[1.0, np.nan]]), None, "failed pool holds a value"),
        (HEALTHY, np.ones((2, 3)), None, r"failed pool has shape \(2, 3\)"),
        (HEALTHY, FAILED, [0.5], "closeness has 1 values for 2 hosts"),
        (HEALTHY, FAILED, [0.5, 1.5], r"closeness must lie in \[0, 1\]"),
    ],
)
def test_bad_input_is_one_clear_error(healthy, failed, closeness, match):
    with pytest.raises(ValueError, match=match):
        SmartHealthSampler(healthy, failed, FEATURES).sample(np.random.default_rng(0), [True, False], closeness)
