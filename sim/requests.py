"""Fluid request model: arrivals, M/M/1 service, drops, timeouts and latency, per instance.

Why fluid: the twin integrates exact piecewise-constant segments (:meth:`sim.datacenter.Datacenter.advance`);
requests are far too many to simulate one by one, but within a segment every instance's arrival rate
and service rate are constant, so the expected counts and the response-time distribution follow in
closed form. One call per segment does O(instances) numpy work and no per-request work.

The model, per instance ``i`` and segment of length ``dt``:

* arrivals ``λ_i = cpu_util_i x peak_rps`` (the trace drives both CPU and traffic);
* service rate ``μ_i = capacity_rps x s_i``, with ``s_i`` the share of its demand the instance gets:
  1 normally, ``host capacity / host load`` on an over-subscribed host, and ``1 - degradation`` while
  it migrates out (the same 10 % the twin charges to PDM);
* during a progressive shift the replacement receives ``shadow_weight`` of ``λ_i`` and serves it with
  its own ``μ`` (its host's share), the source the rest;
* when ``λ >= μ`` the excess ``λ - μ`` is dropped; the admitted ``λ_a = min(λ, μ)`` is an M/M/1 whose
  response time is exponential with rate ``r = μ - λ_a``, so a share ``exp(-r x timeout)`` times out
  and fails. At saturation ``r = 0``: the queue grows without bound and every admitted request times
  out (goodput collapse), which is also the limit of the formula as ``λ -> μ``;
* an instance that is down (``instance_down``) fails everything that arrives at its source share; a
  replacement marked failing (an unhealthy health check, until rollback) fails its share, counted
  also as ``requests_failed_cutover``.

Latency: the served requests of one stream have an exponential response time of rate ``r`` truncated
at the timeout. Instead of binning response times per request, the served count of every stream is
added to a fixed log-spaced histogram over ``r``; quantiles of the mixture of truncated exponentials
are solved at the end. With 1 % rate bins the quantiles are within 0.5 %.

Speed: a segment only computes the streams' rates (about a dozen vector operations over the
instances) and buffers them; the M/M/1 arithmetic, the counts and the binning run once per
accounting step over all its buffered segments (:meth:`RequestAccounting._flush`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scenarios.spec import RequestSettings

if TYPE_CHECKING:
    from sim.datacenter import Datacenter

FloatArray = npt.NDArray[np.float64]

#: Width of a rate bin in ``ln(r)``: 1 % bins keep every quantile within 0.5 % of the exact mixture.

#: Stream-segments buffered before a flush (lam and mu at 8 bytes each: ~64 MB), so a step with
#: thousands of segments over 20,000 instances does not hold them all at once.
_MAX_BUFFERED = 4_000_000

RATE_BIN_LN = 0.01
#: Per-step histograms merge this many fine bins (10 % rate resolution), so the per-step table stays
#: small (steps x ~140) while the run's quantiles use the fine histogram.
STEP_BIN_GROUP = 10
#: Lowest rate binned, relative to ``capacity_rps``; slower streams serve almost nothing before the
#: timeout anyway (their served share is ``~ r x timeout``), so lumping them together costs nothing.
RATE_FLOOR_REL = 1e-6
#: Bisection iterations in ``ln(t)`` when solving a quantile (range 30 in ``ln(t)`` / 2**30: exact).
QUANTILE_ITERATIONS = 30
#: Quantiles the summary reports.
SUMMARY_QUANTILES = (0.5, 0.95, 0.99)


def mm1_served_rate(lam: FloatArray, mu: FloatArray, timeout_s: float) -> tuple[FloatArray, FloatArray]:
    """Served rate (req/s within the timeout) and response-time rate ``r`` of M/M/1 streams.

    Why separate: the tests pin these closed forms directly, and the accounting uses them for the
    sources and the replacements alike.

    Args:
        lam: Arrival rates (req/s), any shape.
        mu: Service rates (req/s), same shape; 0 serves nothing.
        timeout_s: Response time beyond which a request counts as failed.

    Returns:
        ``(served, r)``: ``served = λ_a (1 - exp(-r T))`` with ``λ_a = min(λ, μ)`` and ``r = μ - λ_a``.
    """
    admitted = np.minimum(lam, mu)
    r = mu - admitted
    served = admitted * -np.expm1(-r * timeout_s)
    return served, r


class RequestAccounting:
    """Per-step request counts and response-time histograms of one run, integrated segment by segment.

    Attributes:
        replacement_failing: Per instance, True while its replacement failed a health check and the
            load balancer has not rolled back yet; its share of traffic fails (cutover failures).
        arrived: Requests arrived per accounting step.
        failed: Requests failed per step (dropped, timed out, down, cutover).
        failed_cutover: Requests failed per step because an unhealthy replacement received them.
        served: Requests served within the timeout per step.
    """

    def __init__(self, dc: Datacenter, settings: RequestSettings, *, migration_degradation: float):
        self.dc = dc
        self.settings = settings
        self.peak_rps = float(settings.peak_rps)
        self.capacity_rps = float(settings.capacity_rps)
        self.timeout_s = float(settings.timeout_s)
        self.degradation = float(migration_degradation)
        n_i = len(dc.instance_ids)
        n_s = dc.n_steps
        self.replacement_failing = np.zeros(n_i, dtype=bool)
        self._arrived = np.zeros(n_s)
        self._failed = np.zeros(n_s)
        self._served = np.zeros(n_s)
        self.failed_cutover = np.zeros(n_s)
        self._ln_floor = float(np.log(self.capacity_rps * RATE_FLOOR_REL))
        n_bins = int(np.ceil((np.log(self.capacity_rps) - self._ln_floor) / RATE_BIN_LN)) + 1
        self.n_bins = n_bins
        self.rate_hist = np.zeros(n_bins)
        self.n_step_bins = -(-n_bins // STEP_BIN_GROUP)
        self.step_rate_hist = np.zeros((n_s, self.n_step_bins))
        # Hot-path constants and scratch: rps per MIPS demanded, a host-share buffer padded with a 0
        # for host -1, the service rate factor of a migrating (or down: zeroed after) instance.
        self._rps_per_mips = self.peak_rps / np.asarray(dc.mips, dtype=np.float64)
        self._host_share = np.zeros(len(dc.host_ids) + 1)
        self._moving_or_down = self.capacity_rps * (1.0 - self.degradation)
        self._empty = np.zeros(0)
        self._pending_k = -1
        self._pending_lam: list[FloatArray] = []
        self._pending_mu: list[FloatArray] = []
        self._pending_dt: list[float] = []
        self._pending_size = 0

    # --- rates ----------------------------------------------------------------------------------
    def bin_rates(self) -> FloatArray:
        """Representative rate (geometric centre) of each fine bin."""
        return np.exp(self._ln_floor + (np.arange(self.n_bins) + 0.5) * RATE_BIN_LN)

    def step_bin_rates(self) -> FloatArray:
        """Representative rate of each per-step bin (geometric centre of its group of fine bins)."""
        width = RATE_BIN_LN * STEP_BIN_GROUP
        return np.exp(self._ln_floor + (np.arange(self.n_step_bins) + 0.5) * width)

    def streams(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Arrival and service rates of every stream now: sources, then replacements during a shift.

        Written for the hot path (every segment): about a dozen vector operations, no masks where a
        padded lookup does (host ``-1`` reads a share of 0: an unplaced instance serves nothing).

        Returns:
            ``(lam, mu, cutover_lam)``: per stream arrival and service rates (failing or down streams
            have ``μ = 0``), and the arrival rate of replacements that are failing a health check.
        """
        dc = self.dc
        lam = dc.request * self._rps_per_mips
        load = dc.host_load_mips()
        share = self._host_share
        np.divide(dc.host_cap, np.maximum(load, dc.host_cap), out=share[:-1])  # 1 unless over-subscribed
        mu = share[dc.host_of]
        moving = (dc.migrating_to >= 0) | dc.busy
        mu *= np.where(moving | dc.instance_down, self._moving_or_down, self.capacity_rps)
        if dc.instance_down.any():
            mu[dc.instance_down] = 0.0
        if not dc.shadow_weight.any():  # no progressive shift under way (the common case)
            return lam, mu, self._empty
        sh = np.flatnonzero(dc.shadow_weight > 0)
        sh = sh[dc.shadow_host[sh] >= 0]
        if sh.size == 0:
            return lam, mu, self._empty
        w = dc.shadow_weight[sh]
        lam_rep = lam[sh] * w
        failing = self.replacement_failing[sh]
        mu_rep = np.where(failing, 0.0, share[dc.shadow_host[sh]] * self.capacity_rps)
        lam_src = lam.copy()
        lam_src[sh] *= 1.0 - w
        return np.concatenate([lam_src, lam_rep]), np.concatenate([mu, mu_rep]), lam_rep[failing]

    # --- accounting -----------------------------------------------------------------------------
    def accumulate(self, dt: float, k: int) -> None:
        """Add one segment of constant state, ``dt`` seconds long, to accounting step ``k``.

        Only the streams' rates are computed now; the M/M/1 arithmetic, the counts and the histogram
        binning of a whole step run at once in :meth:`_flush` (a few vector operations per step
        instead of per segment: a month of Bitbrains has hundreds of thousands of segments).
        """
        lam, mu, cutover_lam = self.streams()
        if cutover_lam.size:
            self.failed_cutover[k] += float(cutover_lam.sum()) * dt
        if k != self._pending_k:
            self._flush()
            self._pending_k = k
        self._pending_lam.append(lam)
        self._pending_mu.append(mu)
        self._pending_dt.append(dt)
        self._pending_size += lam.size
        if self._pending_size >= _MAX_BUFFERED:  # bounded memory: a busy step flushes part-way
            self._flush()

    def _flush(self) -> None:
        """Integrate the buffered segments of the pending step: counts and response-time histograms."""
        if not self._pending_dt:
            return
        k = self._pending_k
        lam = np.concatenate(self._pending_lam)
        mu = np.concatenate(self._pending_mu)
        dt = np.repeat(self._pending_dt, [len(x) for x in self._pending_lam])
        self._pending_lam.clear()
        self._pending_mu.clear()
        self._pending_dt.clear()
        self._pending_size = 0
        served, r = mm1_served_rate(lam, mu, self.timeout_s)
        arrived_n = lam * dt
        served_n = served * dt
        arrived = float(arrived_n.sum())
        served_total = float(served_n.sum())
        self._arrived[k] += arrived
        self._served[k] += served_total
        self._failed[k] += float((arrived_n - served_n).sum())  # per stream served <= arrived
        pos = served_n > 0
        if not pos.any():
            return
        r, c = r[pos], served_n[pos]
        b = np.floor((np.log(r) - self._ln_floor) / RATE_BIN_LN).astype(np.int64)
        np.clip(b, 0, self.n_bins - 1, out=b)
        self.rate_hist += np.bincount(b, weights=c, minlength=self.n_bins)
        self.step_rate_hist[k] += np.bincount(b // STEP_BIN_GROUP, weights=c, minlength=self.n_step_bins)

    @property
    def arrived(self) -> FloatArray:
        """Requests arrived per accounting step (bins whatever is still buffered first)."""
        self._flush()
        return self._arrived

    @property
    def served(self) -> FloatArray:
        """Requests served within the timeout per accounting step."""
        self._flush()
        return self._served

    @property
    def failed(self) -> FloatArray:
        """Requests failed per step: dropped, timed out, arrived at a down instance, or cutover."""
        self._flush()
        return self._failed

    # --- results --------------------------------------------------------------------------------
    def latency_quantiles(self, qs: tuple[float, ...] = SUMMARY_QUANTILES) -> dict[float, float]:
        """Response-time quantiles (s) over every request served in the run; NaN if none was served."""
        self._flush()
        out = mixture_quantiles(self.rate_hist[None, :], self.bin_rates(), self.timeout_s, qs)
        return {q: float(out[j][0]) for j, q in enumerate(qs)}

    def step_latency_quantile(self, q: float) -> FloatArray:
        """Response-time quantile of each accounting step (10 % rate resolution); NaN where none served."""
        self._flush()
        return mixture_quantiles(self.step_rate_hist, self.step_bin_rates(), self.timeout_s, (q,))[0]

    def summary(self) -> dict[str, Any]:
        """Run-level request metrics for the run summary (JSON-serialisable)."""
        total = float(self.arrived.sum())
        failed = float(self.failed.sum())
        lat = self.latency_quantiles()
        return {
            "requests_total": total,
            "requests_failed": failed,
            "requests_failed_cutover": float(self.failed_cutover.sum()),
            "request_failure_rate": failed / total if total > 0 else 0.0,
            "latency_p50_s": lat[0.5],
            "latency_p95_s": lat[0.95],
            "latency_p99_s": lat[0.99],
        }

    def timeseries_columns(self) -> dict[str, FloatArray]:
        """Per-step columns for the run's timeseries frame."""
        return {
            "requests": self.arrived.copy(),
            "requests_failed": self.failed.copy(),
            "latency_p95_s": self.step_latency_quantile(0.95),
        }


def mixture_quantiles(
    weights: FloatArray, rates: FloatArray, timeout_s: float, qs: tuple[float, ...]
) -> list[FloatArray]:
    """Quantiles of mixtures of exponentials truncated at ``timeout_s``, one mixture per row.

    Why bisection: the mixture's CDF has no closed-form inverse, but it is monotone, so bisecting in
    ``ln(t)`` for every row at once is exact to float precision in a fixed number of vector steps.

    Args:
        weights: ``(rows, bins)`` served counts of each rate bin.
        rates: ``(bins,)`` response-time rate of each bin (all > 0).
        timeout_s: Truncation point: served requests all finished within it.
        qs: Quantiles in (0, 1).

    Returns:
        One ``(rows,)`` array per quantile; NaN for rows with no weight.
    """
    cols = np.flatnonzero(weights.sum(axis=0) > 0)
    rows_total = weights.sum(axis=1)
    n_rows = weights.shape[0]
    if cols.size == 0:
        return [np.full(n_rows, np.nan) for _ in qs]
    w = weights[:, cols] / np.where(rows_total > 0, rows_total, 1.0)[:, None]
    r = rates[cols]
    norm = -np.expm1(-r * timeout_s)
    out: list[FloatArray] = []
    for q in qs:
        hi = np.full(n_rows, np.log(timeout_s))
        lo = hi - 30.0
        for _ in range(QUANTILE_ITERATIONS):
            mid = 0.5 * (lo + hi)
            cdf = (w * (-np.expm1(-r[None, :] * np.exp(mid)[:, None]) / norm[None, :])).sum(axis=1)
            below = cdf < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append(np.where(rows_total > 0, np.exp(0.5 * (lo + hi)), np.nan))
    return out
