"""CloudSim 3.0.3's consolidation round, compiled, with the released code's bookkeeping kept exactly.

:class:`~policies.consolidation_policy.ConsolidationPolicy` with ``cloudsim_quirks = true`` hands the
whole round to :func:`optimize_allocation`, which replays
``PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation`` (reference ``cloudsim-planetlab.md``
§1.8-1.10) on plain arrays, statement for statement where the order of floating-point operations or
of list traversal decides an outcome:

* every host keeps an ordered VM list (CloudSim's ``getVmList()``, arrival order), and the temporary
  ``vmDestroy`` / ``vmCreate`` of the round edit these lists; VM-selection ties go to the first VM in
  the list, PABFD ties to the lowest host id, the under-load candidate to the lowest id at equal load;
* a host's scheduler allocation follows ``VmSchedulerTimeSharedOverSubscription``: each request is
  capped at the host's PE MIPS, and once the capped requests no longer fit, every VM gets
  ``floor(capped * capacity / sum)``; suitability is ``PE MIPS >= request`` and free MIPS
  ``>= request`` (RAM and BW requests are 0 after t = 0, §1.2);
* PABFD scores ``P(u_after) - P(u_last)``, ``u_last`` being the utilisation of the host's last
  accounting update (``host.getPower()``), not the round's working load; hosts with no allocated MIPS
  skip the after-allocation overload test;
* the detectors read the host history as CloudSim builds it (``sum vmHist[i] * vmMips / hostMips``,
  newest first, trailing zeros trimmed) with their fallback to THR 0.7; LRR decides as LR because
  its bisquare weights never reach the 40 % zero-weight gate (§1.9);
* under-load evacuation never removes a VM placed on a host by the overload step from that host's
  candidacy, so such a VM can be moved twice in one round and appear twice in the plan (§1.8.5);
* MC regresses with a Householder QR as commons-math's ``OLSMultipleLinearRegression`` does and falls
  back to MMT exactly where that code throws (too few rows, an exactly singular column).

The caller supplies what an accounting world knows (see :class:`~policies.fleet.FleetSnapshot`):
``host_cpu_util_last`` and ``instance_list_rank``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from policies.fleet import FloatArray, IntArray

THR = 0
IQR = 1
MAD = 2
LR = 3

MMT = 0
MU = 1
MC = 2
RS = 3

OVERLOAD = 0
UNDERLOAD = 1

_FALLBACK = 0.7
_MIN_STATISTICAL = 12
_WINDOW = 10
_DBL_MAX = 1.7976931348623157e308
_DBL_MIN = 4.9e-324


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def spec_power(table: FloatArray, u: float) -> float:
    """``PowerModelSpecPower.getPower``: linear interpolation of an 11-point table at ``u``.

    Written as the Java code computes it, so equal inputs give equal doubles.
    """
    if u > 1.0:
        u = 1.0
    if u < 0.0:
        u = 0.0
    if np.fmod(u, 0.1) == 0.0:
        return table[int(u * 10)]
    i1 = math.floor(u * 10)
    i2 = math.ceil(u * 10)
    p1 = table[i1]
    delta = (table[i2] - p1) / 10
    return p1 + delta * (u - i1 / 10.0) * 100


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _refresh(h, slots, cnt, req, pe, total, alloc_sum, avail):  # type: ignore[no-untyped-def]
    """Recompute host ``h``'s allocated MIPS and free MIPS from its VM list (no VM in migration)."""
    a = total[h]
    over = False
    for k in range(cnt[h]):
        c = min(req[slots[h, k]], pe[h])
        if not over:
            if a >= c:
                a -= c
            else:
                over = True
    s = 0.0
    if not over:
        for k in range(cnt[h]):
            s += min(req[slots[h, k]], pe[h])
        alloc_sum[h] = s
        avail[h] = a
        return
    tot = 0.0
    for k in range(cnt[h]):
        tot += min(req[slots[h, k]], pe[h])
    f = total[h] / tot
    for k in range(cnt[h]):
        s += math.floor(min(req[slots[h, k]], pe[h]) * f)
    alloc_sum[h] = s
    avail[h] = 0.0


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _remove(h, v, slots, cnt):  # type: ignore[no-untyped-def]
    """``ArrayList.remove(vm)``: drop the first occurrence of ``v`` from host ``h``'s list."""
    n = cnt[h]
    for k in range(n):
        if slots[h, k] == v:
            for j in range(k, n - 1):
                slots[h, j] = slots[h, j + 1]
            cnt[h] = n - 1
            return


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _host_history(h, slots, cnt, hist, hlen, mips, total, out):  # type: ignore[no-untyped-def]
    """``PowerHostUtilizationHistory.getUtilizationHistory`` into ``out``; return its trimmed length."""
    width = out.shape[0]
    for i in range(width):
        out[i] = 0.0
    for k in range(cnt[h]):
        v = slots[h, k]
        for i in range(hlen[v]):
            out[i] += hist[v, i] * mips[v] / total[h]
    n = width
    while n > 0 and out[n - 1] == 0.0:
        n -= 1
    return n


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _median(sorted_data, n):  # type: ignore[no-untyped-def]
    """commons-math ``Percentile(50)`` of the first ``n`` sorted values."""
    pos = 0.5 * (n + 1)
    if pos < 1:
        return sorted_data[0]
    if pos >= n:
        return sorted_data[n - 1]
    fpos = math.floor(pos)
    lower = sorted_data[int(fpos) - 1]
    upper = sorted_data[int(fpos)]
    return lower + (pos - fpos) * (upper - lower)


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _java_round(x):  # type: ignore[no-untyped-def]
    return math.floor(x + 0.5)


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _overloaded(h, detector, safety, slots, cnt, req, hist, hlen, mips, ram_mb, total, rate, buf):  # type: ignore[no-untyped-def]
    """``isHostOverUtilized(host)`` of the detector on host ``h``'s current VM list."""
    requested = 0.0
    for k in range(cnt[h]):
        requested += req[slots[h, k]]
    util = requested / total[h]
    if detector == THR:
        return util > safety
    n = _host_history(h, slots, cnt, hist, hlen, mips, total, buf)
    if detector == LR:
        if n < _WINDOW:
            return util > _FALLBACK
        # y = (H[9], ..., H[0]) against x = 1..10: ordinary least squares (§1.9: the weights never apply)
        sx = 0.0
        sy = 0.0
        for i in range(_WINDOW):
            sx += i + 1.0
            sy += buf[_WINDOW - 1 - i]
        mx = sx / _WINDOW
        my = sy / _WINDOW
        sxy = 0.0
        sxx = 0.0
        for i in range(_WINDOW):
            dx = i + 1.0 - mx
            sxy += dx * (buf[_WINDOW - 1 - i] - my)
            sxx += dx * dx
        slope = sxy / sxx
        intercept = my - slope * mx
        max_ram = -1.0
        for k in range(cnt[h]):
            if ram_mb[slots[h, k]] > max_ram:
                max_ram = ram_mb[slots[h, k]]
        intervals = math.ceil(max_ram / rate / 300.0)
        predicted = (intercept + slope * (_WINDOW + intervals)) * safety
        return predicted >= 1.0
    if n < _MIN_STATISTICAL:
        return util > _FALLBACK
    data = np.sort(buf[:n])
    if detector == IQR:
        q1 = _java_round(0.25 * (n + 1)) - 1
        q3 = _java_round(0.75 * (n + 1)) - 1
        return util > 1.0 - safety * (data[q3] - data[q1])
    med = _median(data, n)
    dev = np.sort(np.abs(med - data))
    return util > 1.0 - safety * _median(dev, n)


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _r_squared_qr(y, x):  # type: ignore[no-untyped-def]
    """R² of OLS ``y ~ 1 + x`` as commons-math's ``OLSMultipleLinearRegression`` computes it.

    Householder QR, back substitution, residual sum of squares and the incremental
    ``SecondMoment`` total sum of squares, in that library's order of operations, so near-ties
    between VMs (R² of 1 up to rounding when rows equal parameters) break the same way. ``x`` is
    (rows, predictors). Returns ``(ok, r2)``: ``ok`` is False where the library throws (an exactly
    zero diagonal of R); a constant ``y`` gives ``-inf`` or NaN, as Java's division does.
    """
    m = y.shape[0]
    p = x.shape[1] + 1
    qrt = np.empty((p, m))
    for r in range(m):
        qrt[0, r] = 1.0
        for c in range(p - 1):
            qrt[c + 1, r] = x[r, c]
    rdiag = np.empty(min(m, p))
    for minor in range(min(m, p)):
        x_norm_sqr = 0.0
        for row in range(minor, m):
            c = qrt[minor, row]
            x_norm_sqr += c * c
        a = -math.sqrt(x_norm_sqr) if qrt[minor, minor] > 0 else math.sqrt(x_norm_sqr)
        rdiag[minor] = a
        if a != 0.0:
            qrt[minor, minor] -= a
            for col in range(minor + 1, p):
                alpha = 0.0
                for row in range(minor, m):
                    alpha -= qrt[col, row] * qrt[minor, row]
                alpha /= a * qrt[minor, minor]
                for row in range(minor, m):
                    qrt[col, row] -= alpha * qrt[minor, row]
    for d in rdiag:
        if abs(d) <= 0.0:
            return False, 0.0
    yy = y.copy()
    for minor in range(min(m, p)):
        dot = 0.0
        for row in range(minor, m):
            dot += yy[row] * qrt[minor, row]
        dot /= rdiag[minor] * qrt[minor, minor]
        for row in range(minor, m):
            yy[row] += dot * qrt[minor, row]
    beta = np.empty(p)
    for row in range(rdiag.shape[0] - 1, -1, -1):
        yy[row] /= rdiag[row]
        beta[row] = yy[row]
        for i in range(row):
            yy[i] -= yy[row] * qrt[row, i]
    rss = 0.0
    for r in range(m):
        fit = 0.0 + 1.0 * beta[0]
        for c in range(p - 1):
            fit += x[r, c] * beta[c + 1]
        res = y[r] - fit
        rss += res * res
    # commons-math SecondMoment, incrementally, as calculateTotalSumOfSquares evaluates it
    m1 = 0.0
    tss = 0.0
    for r in range(m):
        n = r + 1.0
        dev = y[r] - m1
        ndev = dev / n
        m1 += ndev
        tss += (n - 1.0) * dev * ndev
    return True, 1.0 - rss / tss


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _select(h, selection, slots, cnt, req, mips, ram_mb, in_mig, hist, hlen, draws, draw_at):  # type: ignore[no-untyped-def]
    """``getVmToMigrate(host)``: the VM to take off host ``h``, or -1 when none is migratable."""
    n_cand = 0
    for k in range(cnt[h]):
        if not in_mig[slots[h, k]]:
            n_cand += 1
    if n_cand == 0:
        return -1
    cand = np.empty(n_cand, dtype=np.int64)
    j = 0
    for k in range(cnt[h]):
        v = slots[h, k]
        if not in_mig[v]:
            cand[j] = v
            j += 1
    if selection == RS:
        pick = math.floor(draws[draw_at[0] % draws.shape[0]] * n_cand)
        draw_at[0] += 1
        return cand[min(pick, n_cand - 1)]
    if selection == MU:
        best = -1
        best_u = _DBL_MAX
        for v in cand:
            u = req[v] / mips[v]
            if u < best_u:
                best_u = u
                best = v
        return best
    if selection == MC and n_cand > 1:
        m = hlen[cand[0]]
        for v in cand:
            m = min(m, hlen[v])
        if m >= n_cand:  # newSampleData needs rows >= predictors + 1
            best_r = _DBL_MIN
            best_i = 0
            ok_all = True
            xs = np.empty((m, n_cand - 1))
            for i in range(n_cand):
                col = 0
                for jj in range(n_cand):
                    if jj != i:
                        for r in range(m):
                            xs[r, col] = hist[cand[jj], r]
                        col += 1
                ok, r2 = _r_squared_qr(hist[cand[i], :m].copy(), xs)
                if not ok:
                    ok_all = False
                    break
                if r2 > best_r:
                    best_r = r2
                    best_i = i
            if ok_all:
                return cand[best_i]
    # MMT (and MC's fallback): the smallest static RAM, first in list order on ties
    best = -1
    best_ram = _DBL_MAX
    for v in cand:
        if ram_mb[v] < best_ram:
            best_ram = ram_mb[v]
            best = v
    return best


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _find_host(  # type: ignore[no-untyped-def]
    v,
    excluded,
    detector,
    safety,
    slots,
    cnt,
    req,
    hist,
    hlen,
    mips,
    ram_mb,
    total,
    pe,
    power,
    p_last,
    alloc_sum,
    avail,
    rate,
    buf,
):
    """``findHostForVm(vm, excludedHosts)``: PABFD against ``P(u_last)``; -1 when no host qualifies.

    The after-allocation overload test has no side effects, so it is only run for a host whose power
    difference would make it the new best; the choice is the one CloudSim's loop makes.
    """
    best = -1
    min_power = _DBL_MAX
    r = req[v]
    for h in range(total.shape[0]):
        if excluded[h]:
            continue
        if not (pe[h] >= r and avail[h] >= r):
            continue
        diff = spec_power(power[h], (alloc_sum[h] + r) / total[h]) - p_last[h]
        if not diff < min_power:
            continue
        if alloc_sum[h] != 0.0:
            slots[h, cnt[h]] = v
            cnt[h] += 1
            over = _overloaded(h, detector, safety, slots, cnt, req, hist, hlen, mips, ram_mb, total, rate, buf)
            cnt[h] -= 1
            if over:
                continue
        min_power = diff
        best = h
    return best


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _round(  # type: ignore[no-untyped-def]
    host_of,
    rank,
    req,
    mips,
    ram_mb,
    in_mig,
    hist,
    hlen,
    total,
    pe,
    power,
    u_last,
    detector,
    safety,
    selection,
    draws,
    rate,
):
    n_h = total.shape[0]
    n_v = req.shape[0]
    # host VM lists in arrival order
    order = np.argsort(rank, kind="mergesort")
    slots = np.empty((n_h, n_v + 1), dtype=np.int64)
    cnt = np.zeros(n_h, dtype=np.int64)
    for v in order:
        h = host_of[v]
        if h >= 0:
            slots[h, cnt[h]] = v
            cnt[h] += 1
    alloc_sum = np.zeros(n_h)
    avail = np.zeros(n_h)
    for h in range(n_h):
        _refresh(h, slots, cnt, req, pe, total, alloc_sum, avail)
    p_last = np.empty(n_h)
    for h in range(n_h):
        p_last[h] = spec_power(power[h], u_last[h])
    buf = np.zeros(hist.shape[1])
    draw_at = np.zeros(1, dtype=np.int64)
    out_vm = np.empty(4 * n_v + 4, dtype=np.int64)
    out_src = np.empty(4 * n_v + 4, dtype=np.int64)
    out_dst = np.empty(4 * n_v + 4, dtype=np.int64)
    out_why = np.empty(4 * n_v + 4, dtype=np.int64)
    n_out = 0

    # 1. overload detection, host id order
    overloaded = np.zeros(n_h, dtype=np.bool_)
    for h in range(n_h):
        overloaded[h] = _overloaded(h, detector, safety, slots, cnt, req, hist, hlen, mips, ram_mb, total, rate, buf)
    # 3. VM selection
    evicted = np.empty(n_v, dtype=np.int64)
    n_ev = 0
    for h in range(n_h):
        if not overloaded[h]:
            continue
        while True:
            v = _select(h, selection, slots, cnt, req, mips, ram_mb, in_mig, hist, hlen, draws, draw_at)
            if v < 0:
                break
            evicted[n_ev] = v
            n_ev += 1
            _remove(h, v, slots, cnt)
            _refresh(h, slots, cnt, req, pe, total, alloc_sum, avail)
            if not _overloaded(h, detector, safety, slots, cnt, req, hist, hlen, mips, ram_mb, total, rate, buf):
                break
    # 4. PABFD of the selected VMs, by decreasing MIPS (stable)
    ev = evicted[:n_ev]
    ev = ev[np.argsort(-req[ev], kind="mergesort")]
    for v in ev:
        t = _find_host(
            v,
            overloaded,
            detector,
            safety,
            slots,
            cnt,
            req,
            hist,
            hlen,
            mips,
            ram_mb,
            total,
            pe,
            power,
            p_last,
            alloc_sum,
            avail,
            rate,
            buf,
        )
        if t >= 0:
            slots[t, cnt[t]] = v
            cnt[t] += 1
            _refresh(t, slots, cnt, req, pe, total, alloc_sum, avail)
            out_vm[n_out] = v
            out_src[n_out] = host_of[v]
            out_dst[n_out] = t
            out_why[n_out] = OVERLOAD
            n_out += 1
    # 5. under-load evacuation
    excl_cand = overloaded.copy()
    excl_place = overloaded.copy()
    for h in range(n_h):
        if u_last[h] == 0.0:
            excl_cand[h] = True
            excl_place[h] = True
    n_excl = 0
    for h in range(n_h):
        if excl_cand[h]:
            n_excl += 1
    by_load = np.argsort(u_last, kind="mergesort")
    cursor = 0
    placed_v = np.empty(n_v, dtype=np.int64)
    placed_h = np.empty(n_v, dtype=np.int64)
    while n_excl < n_h:
        host = -1
        while cursor < n_h:
            h = by_load[cursor]
            cursor += 1
            if excl_cand[h] or not (u_last[h] > 0.0 and u_last[h] < 1.0):
                continue
            eligible = False
            for k in range(cnt[h]):
                if not in_mig[slots[h, k]]:
                    eligible = True
                    break
            if eligible:
                host = h
                break
        if host < 0:
            break
        excl_cand[host] = True
        excl_place[host] = True
        n_excl += 1
        n_m = 0
        members = np.empty(cnt[host], dtype=np.int64)
        for k in range(cnt[host]):
            if not in_mig[slots[host, k]]:
                members[n_m] = slots[host, k]
                n_m += 1
        if n_m == 0:
            continue
        members = members[:n_m]
        members = members[np.argsort(-req[members], kind="mergesort")]
        n_p = 0
        for v in members:
            t = _find_host(
                v,
                excl_place,
                detector,
                safety,
                slots,
                cnt,
                req,
                hist,
                hlen,
                mips,
                ram_mb,
                total,
                pe,
                power,
                p_last,
                alloc_sum,
                avail,
                rate,
                buf,
            )
            if t < 0:
                for j in range(n_p):
                    _remove(placed_h[j], placed_v[j], slots, cnt)
                    _refresh(placed_h[j], slots, cnt, req, pe, total, alloc_sum, avail)
                n_p = 0
                break
            slots[t, cnt[t]] = v
            cnt[t] += 1
            _refresh(t, slots, cnt, req, pe, total, alloc_sum, avail)
            placed_v[n_p] = v
            placed_h[n_p] = t
            n_p += 1
        for j in range(n_p):
            t = placed_h[j]
            if not excl_cand[t]:
                excl_cand[t] = True
                n_excl += 1
            out_vm[n_out] = placed_v[j]
            out_src[n_out] = host_of[placed_v[j]]
            out_dst[n_out] = t
            out_why[n_out] = UNDERLOAD
            n_out += 1
    return out_vm[:n_out], out_src[:n_out], out_dst[:n_out], out_why[:n_out], overloaded


def optimize_allocation(
    *,
    host_of: IntArray,
    list_rank: IntArray,
    request_mips: FloatArray,
    vm_mips: FloatArray,
    ram_mb: FloatArray,
    in_migration: np.ndarray,
    history_newest_first: FloatArray,
    history_len: IntArray,
    host_total_mips: FloatArray,
    host_pe_mips: FloatArray,
    host_power_w: FloatArray,
    host_util_last: FloatArray,
    detector: int,
    safety: float,
    selection: int,
    draws: FloatArray,
    migration_rate_mb_s: float = 62.5,
) -> tuple[IntArray, IntArray, IntArray, IntArray, np.ndarray]:
    """Run one CloudSim round; return the migration map as (vm, source, target, reason) arrays.

    The map is in CloudSim's order and may name a VM twice (§1.8.5). The fifth array flags the hosts
    the detector called overloaded at the start of the round.
    """
    return _round(  # type: ignore[no-any-return]
        np.ascontiguousarray(host_of, dtype=np.int64),
        np.ascontiguousarray(list_rank, dtype=np.int64),
        np.ascontiguousarray(request_mips, dtype=np.float64),
        np.ascontiguousarray(vm_mips, dtype=np.float64),
        np.ascontiguousarray(ram_mb, dtype=np.float64),
        np.ascontiguousarray(in_migration, dtype=np.bool_),
        np.ascontiguousarray(history_newest_first, dtype=np.float64),
        np.ascontiguousarray(history_len, dtype=np.int64),
        np.ascontiguousarray(host_total_mips, dtype=np.float64),
        np.ascontiguousarray(host_pe_mips, dtype=np.float64),
        np.ascontiguousarray(host_power_w, dtype=np.float64),
        np.ascontiguousarray(host_util_last, dtype=np.float64),
        int(detector),
        float(safety),
        int(selection),
        np.ascontiguousarray(draws, dtype=np.float64),
        float(migration_rate_mb_s),
    )
