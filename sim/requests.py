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

Speed: segments are many (every migration start and end, every failure, every shift of traffic
opens one) and instances too (20,000 in the scaled scenario), so a segment must not cost exp/log work
per instance. Each stream keeps the rates it has had since it last changed; a segment only compares
every stream's rates with the kept ones in one compiled pass, and integrates (M/M/1, counts,
histogram) only the streams whose rates changed, over the interval they had them. The rest are
integrated once per accounting step. The result is the same sum, in a different order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import numpy.typing as npt

from scenarios.spec import RequestSettings

if TYPE_CHECKING:
    from sim.datacenter import Datacenter

FloatArray = npt.NDArray[np.float64]

#: Width of a rate bin in ``ln(r)``: 1 % bins keep every quantile within 0.5 % of the exact mixture.
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


@numba.njit(cache=True)  # type: ignore[misc]
def _book(lam, mu, cutover, length, k, timeout_s, ln_floor, group, totals, rate_hist, step_rate_hist):  # type: ignore[no-untyped-def]
    """Add ``length`` seconds of one M/M/1 stream with rates ``lam``, ``mu`` to step ``k``'s accumulators.

    The formulas of :func:`mm1_served_rate`. ``totals[k]`` holds ``(arrived, served, failed,
    failed_cutover)``; the served requests go to the bin of their response-time rate ``r``. Rates
    come in as scalars: the state tuples are unpacked once by the callers' loops (passing them per
    call cost reference counting on every array).
    """
    admitted = min(lam, mu)
    r = mu - admitted
    arrived_n = lam * length
    served_n = admitted * -np.expm1(-r * timeout_s) * length
    totals[k, 0] += arrived_n
    totals[k, 1] += served_n
    totals[k, 2] += arrived_n - served_n
    if cutover:
        totals[k, 3] += arrived_n
    if served_n > 0.0:
        b = min(max(int(np.floor((np.log(r) - ln_floor) / RATE_BIN_LN)), 0), rate_hist.shape[0] - 1)
        rate_hist[b] += served_n
        step_rate_hist[k, b // group] += served_n


@numba.njit(cache=True)  # type: ignore[misc]
def _refresh(t0, k, instances, all_instances, hosts, load, host_cap, share, dc_state, rates, model, params):  # type: ignore[no-untyped-def]
    """Bring instances' two streams (their source share, their replacement's) up to the state now.

    ``instances`` are refreshed, or every instance when ``all_instances`` (after a wholesale change:
    then every host's service share is recomputed first). Otherwise the hosts in ``hosts`` are
    checked first: a host's share changes only when it is or becomes over-subscribed, which changes
    every instance on it, so the function returns False, having changed nothing, and the caller
    refreshes all. A stream whose rates differ from the kept ones has its old rates integrated from
    ``since`` to ``t0`` (the start of the segment the new state holds for) and keeps the new ones.

    ``dc_state`` is the datacenter's ``(request, host_of, migrating_to, busy, instance_down,
    shadow_weight, shadow_host, replacement_failing)``; ``rates`` is ``(rps_per_mips, capacity_rps,
    moving_rps)``; ``model`` is ``(lam, mu, failing, since, totals, rate_hist, step_rate_hist)`` and
    ``params`` ``(timeout_s, ln_floor, group)``. The tuples are unpacked once, here: per-instance
    helpers taking them cost reference counting on every array at every call.
    """
    request, host_of, migrating_to, busy, down, shadow_weight, shadow_host, rep_failing = dc_state
    rps_per_mips, capacity_rps, moving_rps = rates
    lam, mu, failing, since, totals, rate_hist, step_rate_hist = model
    timeout_s, ln_floor, group = params
    n = request.shape[0]
    if all_instances:
        for h in range(host_cap.shape[0]):
            share[h] = host_cap[h] / max(load[h], host_cap[h])  # 1 unless over-subscribed
        count = n
    else:
        for h in hosts:
            if host_cap[h] / max(load[h], host_cap[h]) != share[h]:
                return False
        count = instances.shape[0]
    for pos in range(count):
        i = pos if all_instances else instances[pos]
        lam_i = request[i] * rps_per_mips[i]
        h = host_of[i]
        s = share[h] if h >= 0 else 0.0
        if down[i]:
            mu_i = 0.0
        elif migrating_to[i] >= 0 or busy[i]:
            mu_i = s * moving_rps
        else:
            mu_i = s * capacity_rps
        w = shadow_weight[i]
        hr = shadow_host[i]
        lam_r = 0.0
        mu_r = 0.0
        fail_r = False
        if w > 0.0 and hr >= 0:
            lam_r = lam_i * w
            lam_i = lam_i * (1.0 - w)
            fail_r = rep_failing[i]
            mu_r = 0.0 if fail_r else share[hr] * capacity_rps
        for side in range(2):  # the source's stream, then the replacement's
            j = i + side * n
            new_lam = lam_r if side else lam_i
            new_mu = mu_r if side else mu_i
            new_fail = fail_r if side else False
            if new_lam == lam[j] and new_mu == mu[j] and new_fail == failing[j]:
                continue
            length = t0 - since[j]
            if length > 0.0 and lam[j] > 0.0:
                _book(
                    lam[j], mu[j], failing[j], length, k, timeout_s, ln_floor, group, totals, rate_hist, step_rate_hist
                )
            lam[j] = new_lam
            mu[j] = new_mu
            failing[j] = new_fail
            since[j] = t0
    return True


@numba.njit(cache=True)  # type: ignore[misc]
def _close_all(t, k, model, params):  # type: ignore[no-untyped-def]
    """Integrate every stream's kept rates up to ``t`` (the streams go on from ``t`` unchanged)."""
    lam, mu, failing, since, totals, rate_hist, step_rate_hist = model
    timeout_s, ln_floor, group = params
    for j in range(since.shape[0]):
        length = t - since[j]
        since[j] = t
        if length <= 0.0 or lam[j] <= 0.0:
            continue
        _book(lam[j], mu[j], failing[j], length, k, timeout_s, ln_floor, group, totals, rate_hist, step_rate_hist)


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

    #: Rescan every instance at every segment instead of only the changes the datacenter noted: the
    #: slow, obviously complete reference the tests compare the incremental path against.
    rescan_every_segment = False

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
        #: Per step: arrived, served, failed, failed at an unhealthy replacement (cutover).
        self._totals = np.zeros((n_s, 4))
        self._ln_floor = float(np.log(self.capacity_rps * RATE_FLOOR_REL))
        n_bins = int(np.ceil((np.log(self.capacity_rps) - self._ln_floor) / RATE_BIN_LN)) + 1
        self.n_bins = n_bins
        self.rate_hist = np.zeros(n_bins)
        self.n_step_bins = -(-n_bins // STEP_BIN_GROUP)
        self.step_rate_hist = np.zeros((n_s, self.n_step_bins))
        self._rps_per_mips = self.peak_rps / np.asarray(dc.mips, dtype=np.float64)
        self._moving_rps = self.capacity_rps * (1.0 - self.degradation)
        # Kept rates of every stream (instances, then their replacements), whether a replacement is
        # failing its health check, and since when (seconds into the pending step) each has held.
        self._lam = np.zeros(2 * n_i)
        self._mu = np.zeros(2 * n_i)
        self._failing = np.zeros(2 * n_i, dtype=bool)
        self._since = np.zeros(2 * n_i)
        self._share = np.zeros(len(dc.host_ids))  # each host's service share when last looked at
        self._rates = (self._rps_per_mips, self.capacity_rps, self._moving_rps)
        self._model = (
            self._lam, self._mu, self._failing, self._since, self._totals, self.rate_hist, self.step_rate_hist
        )  # fmt: skip
        self._params = (self.timeout_s, self._ln_floor, STEP_BIN_GROUP)
        self._no_index = np.zeros(0, dtype=np.int64)
        self._pending_k = -1
        self._pending_s = 0.0  # seconds of step ``_pending_k`` integrated so far

    # --- rates ----------------------------------------------------------------------------------
    def bin_rates(self) -> FloatArray:
        """Representative rate (geometric centre) of each fine bin."""
        return np.exp(self._ln_floor + (np.arange(self.n_bins) + 0.5) * RATE_BIN_LN)

    def step_bin_rates(self) -> FloatArray:
        """Representative rate of each per-step bin (geometric centre of its group of fine bins)."""
        width = RATE_BIN_LN * STEP_BIN_GROUP
        return np.exp(self._ln_floor + (np.arange(self.n_step_bins) + 0.5) * width)

    # --- accounting -----------------------------------------------------------------------------
    def accumulate(self, dt: float, k: int) -> None:
        """Add one segment of constant state, ``dt`` seconds long, to accounting step ``k``.

        The state is the datacenter's now (it held over the whole segment). Streams whose rates did
        not change since the last segment are left alone; they are integrated when they change or
        when the step ends (:meth:`_flush`).
        """
        if k != self._pending_k:
            self._flush()
            self._pending_k = k
            self._pending_s = 0.0
            self._since[:] = 0.0
        dc = self.dc
        if self.rescan_every_segment:
            dc.changed_all = True
        if dc.changed_all or dc.changed_instances:
            load = dc.host_load_mips()
            state = self._dc_state()
            args = (load, dc.host_cap, self._share, state, self._rates, self._model, self._params)
            t0 = self._pending_s
            if dc.changed_all or not _refresh(
                t0,
                k,
                np.asarray(dc.changed_instances, dtype=np.int64),
                False,
                np.asarray(dc.changed_hosts, dtype=np.int64),
                *args,
            ):
                _refresh(t0, k, self._no_index, True, self._no_index, *args)
            dc.changed_all = False
            dc.changed_instances.clear()
            dc.changed_hosts.clear()
        self._pending_s += dt

    def _dc_state(self) -> tuple[Any, ...]:
        """The datacenter arrays the streams' rates follow (read fresh: some are replaced, not updated)."""
        dc = self.dc
        return (
            dc.request,
            dc.host_of,
            dc.migrating_to,
            dc.busy,
            dc.instance_down,
            dc.shadow_weight,
            dc.shadow_host,
            self.replacement_failing,
        )

    def _flush(self) -> None:
        """Integrate every stream of the pending step up to where the step has been accounted."""
        if self._pending_k < 0:
            return
        _close_all(self._pending_s, self._pending_k, self._model, self._params)

    @property
    def arrived(self) -> FloatArray:
        """Requests arrived per accounting step (integrates the pending step so far first)."""
        self._flush()
        return self._totals[:, 0]

    @property
    def served(self) -> FloatArray:
        """Requests served within the timeout per accounting step."""
        self._flush()
        return self._totals[:, 1]

    @property
    def failed(self) -> FloatArray:
        """Requests failed per step: dropped, timed out, arrived at a down instance, or cutover."""
        self._flush()
        return self._totals[:, 2]

    @property
    def failed_cutover(self) -> FloatArray:
        """Requests failed per step because an unhealthy replacement received them."""
        self._flush()
        return self._totals[:, 3]

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
