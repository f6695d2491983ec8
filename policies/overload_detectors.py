"""Host overload detectors of CloudSim 3.0.3 (THR, IQR, MAD, LR, LRR), vectorised over hosts.

A detector answers one question for every host at once: is it overloaded now? CloudSim asks the same
question twice per round (reference ``cloudsim-planetlab.md`` §1.8): once for the current VMs
(``isHostOverUtilized``) and once with a candidate VM added (``isHostOverUtilizedAfterAllocation``),
and the second asks with the VM's *history* too, because the host history follows its VMs. So a
detector works on a :class:`HostLoad` (current utilisation, utilisation history, largest VM memory per
host) and :class:`HostLoad` can be built for the fleet as it is or with one instance added to some
hosts.

Each rule is reproduced as the released code computes it (reference §1.9), quirks included:

* The history is CloudSim's ``PowerHostUtilizationHistory.getUtilizationHistory()``: the last
  :data:`HISTORY_LENGTH` samples, newest first, unobserved samples as 0, and trailing (oldest) zeros
  cut by ``MathUtil.trimZeroTail``, whose length is ``countNonZeroBeginning`` (1 for an all-zero
  history, a quirk of that loop).
* IQR and MAD fall back to THR 0.7 while that length is under 12; LR and LRR while it is under 10.
* LR fits an *unweighted* least-squares line through the newest 10 points, because
  ``createWeigthedLinearRegression`` applies its (inverted) tricube weights only when 40 % of them are
  <= 0, which never happens. LRR's bisquare re-weighting goes through the same gate, so LRR equals LR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray

HISTORY_LENGTH = 30
"""Samples of history CloudSim keeps per VM (``PowerVm.HISTORY_LENGTH``), hence per host."""

FALLBACK_THRESHOLD = 0.7
"""THR threshold the statistical detectors use while history is short (``RunnerAbstract``)."""

MIN_STATISTICAL_HISTORY = 12
"""IQR/MAD need ``countNonZeroBeginning(H) >= 12`` ("12 has been suggested as a safe value")."""

REGRESSION_WINDOW = 10
"""LR/LRR fit their line through this many newest samples and need at least as many."""

MIGRATION_RATE_BYTES_PER_S = 62.5e6
"""CloudSim's migration speed: half of a 1 Gbit/s link, RAM in 10^6-byte MB (reference §1.5)."""

SCHEDULING_INTERVAL_S = 300.0
"""CloudSim's consolidation interval; LR predicts this many seconds ahead per migration interval."""


@dataclass(frozen=True, slots=True)
class HostLoad:
    """What a detector looks at for a set of hosts.

    Attributes:
        util: Requested MIPS over capacity, uncapped (can exceed 1), one per host.
        history: Host utilisation history, shape (hosts, H), oldest first, NaN where unobserved (the
            orientation of :meth:`FleetSnapshot.host_util_history`).
        max_ram_bytes: Memory of the largest instance on each host (0 without instances); LR turns it
            into the longest migration time.
    """

    util: FloatArray
    history: FloatArray
    max_ram_bytes: FloatArray

    @classmethod
    def of(cls, fleet: FleetSnapshot) -> HostLoad:
        """Return the load of every host of ``fleet`` with its current instances."""
        placed = fleet.instance_host >= 0
        max_ram = np.zeros(fleet.n_hosts)
        np.maximum.at(max_ram, fleet.instance_host[placed], fleet.instance_ram_bytes[placed])
        return cls(fleet.host_cpu_util(), fleet.host_util_history(), max_ram)

    def with_instance(
        self, fleet: FleetSnapshot, hosts: IntArray, instance: int, fleet_hosts: IntArray | None = None
    ) -> HostLoad:
        """Return the load of ``hosts`` as if ``instance`` were added to each of them.

        This is CloudSim's ``isHostOverUtilizedAfterAllocation``: ``vmCreate`` the VM, ask the same
        detector, ``vmDestroy`` it. The VM brings its request, its memory and its history (scaled from
        its own capacity to each host's), so history-based detectors see its past on the new host.
        ``hosts`` index this load's rows; ``fleet_hosts`` (``hosts`` by default) are the same hosts'
        indices in ``fleet``, for a load that covers only some of the fleet's hosts.
        """
        capacity = fleet.host_cpu_capacity_mips[hosts if fleet_hosts is None else fleet_hosts]
        vm_mips = fleet.instance_cpu_capacity_mips[instance]
        util = self.util[hosts] + fleet.instance_cpu_request_mips[instance] / capacity
        vm_history = fleet.instance_cpu_history[instance] * vm_mips
        own = self.history[hosts]
        added = np.where(np.isnan(own), 0.0, own) + np.where(np.isnan(vm_history), 0.0, vm_history) / capacity[:, None]
        unobserved = np.isnan(own) & np.isnan(vm_history)[None, :]
        history = np.where(unobserved, np.nan, added)
        max_ram = np.maximum(self.max_ram_bytes[hosts], fleet.instance_ram_bytes[instance])
        return HostLoad(util, history, max_ram)

    def with_extra_mips(self, fleet: FleetSnapshot, hosts: IntArray, extra_mips: FloatArray) -> HostLoad:
        """Return the load of ``hosts`` with ``extra_mips`` more requested now and no change in history."""
        util = self.util[hosts] + extra_mips / fleet.host_cpu_capacity_mips[hosts]
        return HostLoad(util, self.history[hosts], self.max_ram_bytes[hosts])


class OverloadDetector(Protocol):
    """Decide which hosts are overloaded (CloudSim's ``isHostOverUtilized``)."""

    name: str

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return one flag per host of ``load``: True where the host is overloaded."""
        ...


def overloaded_hosts(detector: OverloadDetector, fleet: FleetSnapshot) -> BoolArray:
    """Return the detector's verdict for every host of ``fleet`` as it is now."""
    return detector.overloaded(HostLoad.of(fleet))


def overloaded_after_adding(
    detector: OverloadDetector, fleet: FleetSnapshot, hosts: IntArray, instance: int
) -> BoolArray:
    """Return, for each of ``hosts``, whether it would be overloaded with ``instance`` added (§1.8 step 4)."""
    return detector.overloaded(HostLoad.of(fleet).with_instance(fleet, hosts, instance))


def cloudsim_history(history: FloatArray) -> tuple[FloatArray, IntArray]:
    """Convert oldest-first, NaN-padded histories to CloudSim's newest-first, zero-trimmed ones.

    Returns:
        ``(newest_first, length)``: a (hosts, :data:`HISTORY_LENGTH`) matrix whose row ``h`` holds
        host ``h``'s history newest first in its first ``length[h]`` entries (zeros after), and
        ``length`` as ``MathUtil.countNonZeroBeginning`` computes it: one past the oldest non-zero
        sample, and 1 when every sample is zero.
    """
    n_hosts = history.shape[0]
    recent = np.nan_to_num(history[:, -HISTORY_LENGTH:], nan=0.0)[:, ::-1]
    newest_first = np.zeros((n_hosts, HISTORY_LENGTH))
    newest_first[:, : recent.shape[1]] = recent
    nonzero = newest_first != 0.0
    last_nonzero = HISTORY_LENGTH - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    length = np.where(nonzero.any(axis=1), last_nonzero + 1, 1).astype(np.int64)
    return newest_first, length


def _sorted_prefix(values: FloatArray, length: IntArray) -> FloatArray:
    """Sort the first ``length[h]`` entries of each row ascending; the rest become +inf at the end."""
    cols = np.arange(values.shape[1])[None, :]
    return np.sort(np.where(cols < length[:, None], values, np.inf), axis=1)


def _take(matrix: FloatArray, index: IntArray) -> FloatArray:
    return np.take_along_axis(matrix, index[:, None], axis=1)[:, 0]


def _java_round(x: npt.ArrayLike) -> IntArray:
    """Java ``Math.round`` for non-negative values: halves round up."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def iqr(values: FloatArray, length: IntArray) -> FloatArray:
    """``MathUtil.iqr`` of each row's first ``length`` entries, with its 0-based ``Math.round`` quartiles.

    ``q1 = round(0.25(n+1)) - 1``, ``q3 = round(0.75(n+1)) - 1`` on the sorted data (reference §1.9).
    Rows need ``length >= 1``.
    """
    ordered = _sorted_prefix(values, length)
    q1 = _java_round(0.25 * (length + 1)) - 1
    q3 = _java_round(0.75 * (length + 1)) - 1
    return _take(ordered, q3) - _take(ordered, q1)


def median(values: FloatArray, length: IntArray) -> FloatArray:
    """Median of each row's first ``length`` entries, as commons-math ``Percentile(50)`` computes it.

    Position ``(n+1)/2``: the middle value for odd ``n``, ``lower + 0.5 (upper - lower)`` for even.
    """
    ordered = _sorted_prefix(values, length)
    upper = _take(ordered, length // 2)
    lower = _take(ordered, (length - 1) // 2)
    return lower + 0.5 * (upper - lower)


def mad(values: FloatArray, length: IntArray) -> FloatArray:
    """``MathUtil.mad``: the median of absolute deviations from the median, per row prefix."""
    centre = median(values, length)
    return median(np.abs(values - centre[:, None]), length)


def _threshold_fallback(util: FloatArray) -> BoolArray:
    return util > FALLBACK_THRESHOLD


class NullDetector:
    """Never overloaded: a policy built on it only consolidates, and tests get a neutral detector."""

    name = "null"

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return False for every host."""
        return np.zeros(len(load.util), dtype=np.bool_)


class StaticThreshold:
    """THR: overloaded when utilisation is strictly above ``threshold`` (reference §1.9).

    Args:
        threshold: Utilisation a host may reach without being overloaded (CloudSim runs 0.8 and 1.0).
    """

    name = "static_threshold"

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return ``util > threshold`` per host."""
        return np.asarray(load.util > self.threshold, dtype=np.bool_)


class InterQuartileRange:
    """IQR: the threshold drops as the history spreads, ``T = 1 - s * IQR(H)`` (reference §1.9).

    A volatile host is treated as overloaded earlier, because a spread-out past predicts spikes. With
    fewer than 12 samples (``countNonZeroBeginning``) it falls back to THR 0.7.

    Args:
        safety: ``s``; the paper runs 1.5.
    """

    name = "inter_quartile_range"

    def __init__(self, safety: float = 1.5) -> None:
        self.safety = safety

    def thresholds(self, load: HostLoad) -> FloatArray:
        """Return ``1 - s * IQR(H)`` per host, NaN where the history is too short to compute it."""
        values, length = cloudsim_history(load.history)
        out = 1.0 - self.safety * iqr(values, length)
        return np.where(length >= MIN_STATISTICAL_HISTORY, out, np.nan)

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return ``util > T`` per host, or ``util > 0.7`` while its history is short."""
        threshold = self.thresholds(load)
        return np.where(np.isnan(threshold), _threshold_fallback(load.util), load.util > threshold)


class MedianAbsoluteDeviation:
    """MAD: like IQR with ``T = 1 - s * MAD(H)``, a spread measure robust to single spikes (§1.9).

    Args:
        safety: ``s``; the paper runs 2.5.
    """

    name = "median_absolute_deviation"

    def __init__(self, safety: float = 2.5) -> None:
        self.safety = safety

    def thresholds(self, load: HostLoad) -> FloatArray:
        """Return ``1 - s * MAD(H)`` per host, NaN where the history is too short to compute it."""
        values, length = cloudsim_history(load.history)
        out = 1.0 - self.safety * mad(values, length)
        return np.where(length >= MIN_STATISTICAL_HISTORY, out, np.nan)

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return ``util > T`` per host, or ``util > 0.7`` while its history is short."""
        threshold = self.thresholds(load)
        return np.where(np.isnan(threshold), _threshold_fallback(load.util), load.util > threshold)


def cloudsim_weighted_line(y: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``MathUtil.createWeigthedLinearRegression`` over ``x = 1..n`` for each row of ``y``.

    The weights are applied (by scaling x and y with their square roots, then an ordinary fit *with*
    intercept) only in rows where at least 40 % of them are <= 0, as the released code does; every
    other row gets the unweighted least-squares line. Returns ``(intercept, slope)`` per row.
    """
    n = y.shape[1]
    x = np.broadcast_to(np.arange(1.0, n + 1.0), y.shape)
    gated = ((weights <= 0.0).sum(axis=1) >= 0.4 * n)[:, None]
    root = np.sqrt(np.where(gated, np.maximum(weights, 0.0), 1.0))
    xw = np.where(gated, root * x, x)
    yw = np.where(gated, root * y, y)
    x_mean = xw.mean(axis=1, keepdims=True)
    y_mean = yw.mean(axis=1, keepdims=True)
    sxx = ((xw - x_mean) ** 2).sum(axis=1)
    sxy = ((xw - x_mean) * (yw - y_mean)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx
    intercept = y_mean[:, 0] - slope * x_mean[:, 0]
    return intercept, slope


def tricube_weights(n: int) -> FloatArray:
    """``MathUtil.getTricubeWeigts``: inverted tricube weights ``1/k``, with ``w[0] = w[1] = w[2]``."""
    top = n - 1.0
    weights = np.zeros(n)
    i = np.arange(2, n)
    k = (1.0 - ((top - i) / top) ** 3) ** 3
    weights[2:] = np.where(k > 0, 1.0 / np.where(k > 0, k, 1.0), np.finfo(np.float64).max)
    weights[:2] = weights[2]
    return weights


def bisquare_weights(residuals: FloatArray) -> FloatArray:
    """``MathUtil.getTricubeBisquareWeigts`` per row: tricube weights over ``(1 - (r / 6 med|r|)^2)^2``."""
    n = residuals.shape[1]
    s6 = 6.0 * np.median(np.abs(residuals), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = (1.0 - (residuals / s6) ** 2) ** 2
    positive = k > 0  # NaN (0/0 when every residual is 0) is not positive, as in Java
    out = np.where(positive, tricube_weights(n)[None, :] / np.where(positive, k, 1.0), np.finfo(np.float64).max)
    out[:, :2] = out[:, 2:3]
    return out


class LocalRegression:
    """LR: predict utilisation one migration ahead with a line through the last 10 samples (§1.9).

    Overloaded when ``s * (a + b * (10 + ceil(maxVmMigTime / 300))) >= 1``: a host is relieved before
    the trend carries it over capacity, early enough to finish its slowest migration. The longest
    migration time is the largest instance's memory over CloudSim's 62.5 MB/s. Falls back to THR 0.7
    below 10 samples.

    Args:
        safety: ``s``; the paper runs 1.2.
    """

    name = "local_regression"

    def __init__(self, safety: float = 1.2) -> None:
        self.safety = safety

    def _line(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return cloudsim_weighted_line(y, np.broadcast_to(tricube_weights(y.shape[1]), y.shape))

    def predictions(self, load: HostLoad) -> FloatArray:
        """Return ``s * prediction`` per host, NaN where the history is shorter than 10 samples."""
        values, length = cloudsim_history(load.history)
        y = values[:, :REGRESSION_WINDOW][:, ::-1]  # oldest to newest, x = 1..10
        intercept, slope = self._line(y)
        intervals = np.ceil(load.max_ram_bytes / MIGRATION_RATE_BYTES_PER_S / SCHEDULING_INTERVAL_S)
        predicted = self.safety * (intercept + slope * (REGRESSION_WINDOW + intervals))
        return np.where(length >= REGRESSION_WINDOW, predicted, np.nan)

    def overloaded(self, load: HostLoad) -> BoolArray:
        """Return ``s * prediction >= 1`` per host, or ``util > 0.7`` while its history is short."""
        predicted = self.predictions(load)
        return np.where(np.isnan(predicted), _threshold_fallback(load.util), predicted >= 1.0)


class LocalRegressionRobust(LocalRegression):
    """LRR: LR with ``getRobustLoessParameterEstimates``' bisquare re-weighting of residuals (§1.9).

    The robust fit is computed in full: a first line, its residuals, bisquare weights from them, and
    a second fit with those weights (kept unless its estimates are NaN). Both fits pass through
    :func:`cloudsim_weighted_line`'s 40 % gate, which these positive weights never open, so the
    second line is the first one and LRR decides exactly as LR does, as in CloudSim's runs.

    Args:
        safety: ``s``; the paper runs 1.2.
    """

    name = "local_regression_robust"

    def _line(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        intercept, slope = super()._line(y)
        x = np.arange(1.0, y.shape[1] + 1.0)
        residuals = y - (intercept[:, None] + slope[:, None] * x[None, :])
        robust_intercept, robust_slope = cloudsim_weighted_line(y, bisquare_weights(residuals))
        failed = np.isnan(robust_intercept) | np.isnan(robust_slope)
        return np.where(failed, intercept, robust_intercept), np.where(failed, slope, robust_slope)
