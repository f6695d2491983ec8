from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.traces.resample import regrid_matrix, resample_to_grid


def test_duplicates_are_averaged_and_gaps_interpolated():
    # series 0: two samples at t=0 (duplicate), nothing in step 1, one sample in step 2
    rows = [0, 0, 0, 1]
    t = [0.0, 0.0, 250.0, 120.0]
    v = [1.0, 3.0, 6.0, 5.0]
    grid = resample_to_grid(rows, t, v, 2, 100.0)
    assert grid.origin_s == 0.0
    np.testing.assert_allclose(grid.values[0, 0], [2.0, 4.0, 6.0])
    # series 1 lives only in step 1: zero before and after (it did not exist)
    np.testing.assert_allclose(grid.values[0, 1], [0.0, 5.0, 0.0])
    assert grid.filled_steps.tolist() == [1]


def test_origin_is_floored_to_grid_and_nan_ignored():
    grid = resample_to_grid([0, 0, 0], [1375308176.0, 1375308176.0, 1375308476.0], [[1.0], [np.nan], [3.0]], 1, 300.0)
    assert grid.origin_s == 1375308000.0
    np.testing.assert_allclose(grid.values[0, 0], [1.0, 3.0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="step_s"):
        resample_to_grid([0], [0.0], [1.0], 1, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        resample_to_grid([3], [0.0], [1.0], 1, 60.0)


samples = st.lists(st.tuples(st.integers(0, 3), st.floats(0, 10_000, allow_nan=False)), min_size=1, max_size=200)


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(-50, 50, allow_nan=False), st.sampled_from([10.0, 60.0, 300.0]))
def test_constant_input_stays_constant_within_lifetime(pts, c, step):
    rows = np.array([p[0] for p in pts])
    t = np.array([p[1] for p in pts])
    grid = resample_to_grid(rows, t, np.full(len(pts), c), 4, step, origin_s=0.0)
    for r in range(4):
        mine = t[rows == r]
        out = grid.values[0, r]
        if mine.size == 0:
            assert not out.any()
            continue
        first, last = int(mine.min() // step), int(mine.max() // step)
        np.testing.assert_allclose(out[first : last + 1], c, rtol=1e-6, atol=1e-5)
        assert not out[:first].any() and not out[last + 1 :].any()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 20), st.data())
def test_mean_preserved_on_full_bins(per_bin, n_bins, data):
    # per_bin samples in each bin, evenly spaced: every bin is full, so each output equals its samples' mean
    n = per_bin * n_bins
    v = np.array(data.draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=n, max_size=n)))
    t = np.arange(v.size) * (60.0 / per_bin)
    grid = resample_to_grid(np.zeros(v.size, dtype=int), t, v, 1, 60.0, origin_s=0.0)
    np.testing.assert_allclose(grid.values[0, 0], v.reshape(n_bins, per_bin).mean(axis=1), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(grid.values[0, 0].mean(), v.mean(), rtol=1e-5, atol=1e-3)
    assert grid.filled_steps[0] == 0


def test_regrid_matrix_coarser_averages_and_finer_interpolates():
    m = np.array([[0.0, 1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(regrid_matrix(m, 300.0, 600.0), [[0.5, 2.5]])
    np.testing.assert_allclose(regrid_matrix(m, 300.0, 150.0), [[0, 0.5, 1, 1.5, 2, 2.5, 3]])
    assert regrid_matrix(m, 300.0, 300.0) is m
