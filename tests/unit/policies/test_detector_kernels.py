"""The compiled one-host after-allocation checks give the numpy detectors' verdicts, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import detector_kernels as dk
from policies.overload_detectors import (
    HostLoad,
    InterQuartileRange,
    LocalRegression,
    LocalRegressionRobust,
    MedianAbsoluteDeviation,
    OverloadDetector,
    StaticThreshold,
)

DETECTORS: list[tuple[int, float, OverloadDetector]] = [
    (dk.THR, 0.8, StaticThreshold(0.8)),
    (dk.IQR, 1.5, InterQuartileRange(1.5)),
    (dk.MAD, 2.5, MedianAbsoluteDeviation(2.5)),
    (dk.LR, 1.2, LocalRegression(1.2)),
    (dk.LRR, 1.2, LocalRegressionRobust(1.2)),
]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_hist=st.sampled_from([5, 12, 30, 35]))
def test_one_host_check_equals_the_numpy_detector(seed: int, n_hist: int) -> None:
    rng = np.random.default_rng(seed)
    capacity = float(rng.choice([1000.0, 1860.0, 3720.0]))
    history_mips = rng.random(n_hist) * capacity * rng.choice([0.3, 1.0, 2.0])
    history_mips[rng.random(n_hist) < 0.3] = rng.choice([0.0, 0.1])
    if rng.random() < 0.3:
        history_mips[:] = rng.choice([0.0, 300.0])
    seen = rng.integers(0, 3, n_hist).astype(np.int64)
    seen[: rng.integers(0, n_hist + 1)] = 0
    vm_history = rng.random(n_hist)
    vm_history[rng.random(n_hist) < 0.2] = 0.0
    if rng.random() < 0.3:
        vm_history[:] = 0.0
    vm_history[: rng.integers(0, n_hist + 1)] = np.nan
    vm_mips = float(rng.choice([500.0, 1000.0, 2500.0]))
    util = float(rng.random() * 1.2 + rng.random() * 0.5)
    max_ram = float(rng.choice([0.0, 1e9, 40e9, 60e9]))
    own = np.where(seen == 0, np.nan, history_mips / capacity)
    vm = vm_history * vm_mips
    added = np.where(np.isnan(own), 0.0, own) + np.where(np.isnan(vm), 0.0, vm) / capacity
    history = np.where(np.isnan(own) & np.isnan(vm), np.nan, added)
    load = HostLoad(np.array([util]), history[None, :], np.array([max_ram]))
    for kernel, safety, detector in DETECTORS:
        got = dk.overloaded_after(kernel, safety, util, capacity, history_mips, seen, vm_history, vm_mips, max_ram)
        if got == dk.UNDECIDED:
            assert kernel == dk.LRR
            continue
        assert bool(got) == bool(detector.overloaded(load)[0]), detector.name
