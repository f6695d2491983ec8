"""Compiled after-allocation checks of the CloudSim detectors for one host (THR, IQR, MAD, LR).

:class:`~policies.consolidation_policy.ConsolidationPolicy` asks, for nearly every placement, whether
the host the target rule picked would be overloaded with the instance added
(``isHostOverUtilizedAfterAllocation``, reference ``cloudsim-planetlab.md`` §1.8). Through numpy that
one-host question costs dozens of array calls; here it is one compiled call on the host's working
history (MIPS sums and observed-sample counts, oldest first) and the instance's.

The arithmetic is that of :mod:`policies.overload_detectors` operation for operation, so verdicts are
bit-identical: the history is divided by capacity before the instance's share is added, quartiles and
medians are read from the sorted zero-trimmed prefix at the same 0-based positions, and LR's sums
follow numpy's ``add.reduce`` over a row of 10 (first element, then an 8-way pairwise block of the
other 9, then the rest). LRR decides as LR unless its bisquare weights open the 40 % gate, which
needs the median absolute residual to be 0 (six or more exact zeros); when five or more residuals
are that close to 0 the kernel answers :data:`UNDECIDED` and the caller asks the numpy detector.
"""

from __future__ import annotations

import numba
import numpy as np

from policies.fleet import FloatArray, IntArray

THR = 0
"""Kernel id of :class:`~policies.overload_detectors.StaticThreshold`."""
IQR = 1
"""Kernel id of :class:`~policies.overload_detectors.InterQuartileRange`."""
MAD = 2
"""Kernel id of :class:`~policies.overload_detectors.MedianAbsoluteDeviation`."""
LR = 3
"""Kernel id of :class:`~policies.overload_detectors.LocalRegression`."""
LRR = 4
"""Kernel id of :class:`~policies.overload_detectors.LocalRegressionRobust`."""

UNDECIDED = -1
"""What :func:`overloaded_after` returns when only the numpy detector can decide (LRR's rare case)."""

_NEAR_ZERO = 1e-9

_HISTORY = 30
_FALLBACK = 0.7
_MIN_STATISTICAL = 12
_WINDOW = 10
_RATE = 62.5e6
_INTERVAL = 300.0


@numba.njit(cache=True)  # type: ignore[misc]
def _reduce_sum(a: FloatArray) -> float:
    """``np.add.reduce`` of a contiguous row of 9 to 16 values: first element plus pairwise rest."""
    rest = a[1:]
    n = rest.shape[0]
    res = ((rest[0] + rest[1]) + (rest[2] + rest[3])) + ((rest[4] + rest[5]) + (rest[6] + rest[7]))
    for k in range(8, n):
        res += rest[k]
    return a[0] + res


@numba.njit(cache=True)  # type: ignore[misc]
def _median_sorted(ordered: FloatArray, length: int) -> float:
    upper = ordered[length // 2]
    lower = ordered[(length - 1) // 2]
    return lower + 0.5 * (upper - lower)


@numba.njit(cache=True)  # type: ignore[misc]
def overloaded_after(
    detector: int,
    safety: float,
    util: float,
    capacity: float,
    history_mips: FloatArray,
    seen: IntArray,
    vm_history_frac: FloatArray,
    vm_mips: float,
    max_ram: float,
) -> int:
    """Whether a host would be overloaded with one instance added: 1 yes, 0 no, or :data:`UNDECIDED`.

    Args:
        detector: :data:`THR`, :data:`IQR`, :data:`MAD`, :data:`LR` or :data:`LRR`.
        safety: The detector's parameter (THR: the threshold).
        util: Host utilisation with the instance's request already added.
        capacity: Host CPU capacity (MIPS).
        history_mips: Host's working history in MIPS, oldest first.
        seen: Observed samples behind each of ``history_mips`` (0: unobserved).
        vm_history_frac: The instance's history as a fraction of its capacity, NaN unobserved.
        vm_mips: The instance's capacity (MIPS).
        max_ram: Largest memory on the host with the instance added.
    """
    if detector == THR:
        return int(util > safety)
    n_hist = history_mips.shape[0]
    newest = np.zeros(_HISTORY)
    n_recent = min(n_hist, _HISTORY)
    for k in range(n_recent):
        t = n_hist - 1 - k
        own_nan = seen[t] == 0
        own = 0.0 if own_nan else history_mips[t] / capacity
        vm = vm_history_frac[t] * vm_mips
        vm_nan = np.isnan(vm)
        value = own + (0.0 if vm_nan else vm) / capacity
        newest[k] = 0.0 if (own_nan and vm_nan) else value
    length = 1
    for k in range(_HISTORY - 1, -1, -1):
        if newest[k] != 0.0:
            length = k + 1
            break
    if detector >= LR:  # LR or LRR
        if length < _WINDOW:
            return int(util > _FALLBACK)
        y = np.empty(_WINDOW)
        for k in range(_WINDOW):
            y[k] = newest[_WINDOW - 1 - k]
        x = np.arange(1.0, _WINDOW + 1.0)
        x_mean = _reduce_sum(x) / _WINDOW
        y_mean = _reduce_sum(y) / _WINDOW
        dx = np.empty(_WINDOW)
        dxy = np.empty(_WINDOW)
        for k in range(_WINDOW):
            d = x[k] - x_mean
            dx[k] = d**2
            dxy[k] = d * (y[k] - y_mean)
        slope = _reduce_sum(dxy) / _reduce_sum(dx)
        intercept = y_mean - slope * x_mean
        if detector == LRR:
            near_zero = 0
            for k in range(_WINDOW):
                if abs(y[k] - (intercept + slope * x[k])) < _NEAR_ZERO:
                    near_zero += 1
            if near_zero >= 5:
                return UNDECIDED
        intervals = np.ceil(max_ram / _RATE / _INTERVAL)
        predicted = safety * (intercept + slope * (_WINDOW + intervals))
        if np.isnan(predicted):
            return int(util > _FALLBACK)
        return int(predicted >= 1.0)
    if length < _MIN_STATISTICAL:
        return int(util > _FALLBACK)
    ordered = np.sort(newest[:length])
    if detector == IQR:
        q1 = int(np.floor(0.25 * (length + 1) + 0.5)) - 1
        q3 = int(np.floor(0.75 * (length + 1) + 0.5)) - 1
        threshold = 1.0 - safety * (ordered[q3] - ordered[q1])
    else:
        centre = _median_sorted(ordered, length)
        deviation = np.sort(np.abs(newest[:length] - centre))
        threshold = 1.0 - safety * _median_sorted(deviation, length)
    if np.isnan(threshold):
        return int(util > _FALLBACK)
    return int(util > threshold)


@numba.njit(cache=True)  # type: ignore[misc]
def move_instance(
    util: FloatArray,
    history_mips: FloatArray,
    seen: IntArray,
    placement: IntArray,
    max_ram: FloatArray,
    vm_history_mips: FloatArray,
    vm_observed: IntArray,
    request: FloatArray,
    host_capacity: FloatArray,
    ram: FloatArray,
    instance: int,
    host: int,
    sign: int,
) -> None:
    """Add (``sign = 1``) or remove (``sign = -1``) ``instance`` on ``host`` in a working load.

    The same operations as the numpy ``_WorkingLoad.move`` it replaces, in the same order.
    """
    util[host] += sign * request[instance] / host_capacity[host]
    for t in range(history_mips.shape[1]):
        history_mips[host, t] += sign * vm_history_mips[instance, t]
        seen[host, t] += sign * vm_observed[instance, t]
    placement[instance] = host if sign > 0 else -1
    found = False
    top = 0.0
    for j in range(placement.shape[0]):
        if placement[j] == host and (not found or ram[j] > top):
            top = ram[j]
            found = True
    max_ram[host] = top if found else 0.0


@numba.njit(cache=True)  # type: ignore[misc]
def refresh_host(
    h: int,
    limit_util: float,
    placement: IntArray,
    request: FloatArray,
    ram: FloatArray,
    capacity: FloatArray,
    ram_bytes: FloatArray,
    steps: FloatArray,
    intercept: FloatArray,
    slope: FloatArray,
    load: FloatArray,
    headroom: FloatArray,
    ram_free: FloatArray,
    power_now: FloatArray,
) -> None:
    """Recompute host ``h``'s working state as ``placement_kernels.load_hosts`` would, bit for bit."""
    total = 0.0
    ram_used = 0.0
    for i in range(placement.shape[0]):
        if placement[i] == h:
            total += request[i]
            ram_used += ram[i]
    load[h] = total
    headroom[h] = limit_util * capacity[h] - total
    ram_free[h] = ram_bytes[h] - ram_used
    top = intercept.shape[1] - 1
    x = min(total * steps[h], float(top))
    k = min(max(int(x), 0), top)
    power_now[h] = intercept[h, k] + slope[h, k] * x
