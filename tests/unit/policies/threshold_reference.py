"""The numpy implementation ThresholdPolicy had before its compiled kernels, kept as a test oracle.

It places instances with vectorised fit tests over all hosts (one set of numpy calls per
placement) and rejects hopeless placements with per-IVN headroom bounds, the design the kernels in
:mod:`policies.placement_kernels` replace. Plans of the two must be identical, ties included,
which ``test_kernel_equivalence.py`` checks on random fleets. It gained only the multi-PE fit rule
(``request / pes <= host_pe_mips`` and ``pes <= host_pes``), so it can check that too.
"""

from __future__ import annotations

import math

import numpy as np

from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray
from policies.instance_selection import INSTANCE_SELECTIONS, InstanceSelection
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment

FIT_TOLERANCE_MIPS = 1e-6
"""Slack in the headroom test, so a host filled exactly to the threshold still counts as fitting."""


class HostLoadState:
    """Per-host CPU load, free memory and power of a fleet, updated as moves are planned.

    Attributes:
        capacity_mips: Total CPU capacity per host (read-only view of the fleet).
        pe_mips: Capacity of one processing element per host (read-only view).
        load_mips: Working CPU request per host.
        headroom_mips: CPU that can still be added before the utilisation limit, per host.
        ram_free_bytes: Working free memory per host.
        power_now_w: Power at the working load, so power-aware rules only interpolate the "after".
        ivn_masks: Boolean matrix (IVNs, hosts): ``ivn_masks[k, h]`` is true when host ``h`` is in IVN ``k``.
    """

    def __init__(self, fleet: FleetSnapshot, limit_util: float) -> None:
        """Copy the fleet's host load and memory; ``limit_util`` is the utilisation no target may pass."""
        self.capacity_mips = fleet.host_cpu_capacity_mips
        self.pe_mips = fleet.host_pe_mips
        self.pes = fleet.host_pes
        self.load_mips = fleet.host_request_mips()
        self.headroom_mips = limit_util * self.capacity_mips - self.load_mips
        self.ram_free_bytes = fleet.host_ram_bytes - fleet.host_ram_used_bytes()
        self.ivn_masks = fleet.host_ivn[None, :] == np.arange(len(fleet.ivn_names))[:, None]
        table = np.asarray(fleet.host_power_w, dtype=np.float64)
        self._top = table.shape[1] - 1
        # Segment k of host h covers x in [k, k+1] (x = utilisation x table steps) and is stored as
        # intercept + slope * x at flat index h * (top + 1) + k. The last "segment" (k = top) is flat
        # at the 100 % figure, so x = top needs no special case.
        slope = np.diff(table, axis=1, append=table[:, -1:])
        self._slope_flat = slope.ravel()
        self._intercept_flat = (table - slope * np.arange(self._top + 1)).ravel()
        self._row_base = np.arange(fleet.n_hosts, dtype=np.int64) * (self._top + 1)
        self._steps_per_mips = self._top / self.capacity_mips
        self._min_pe_mips = float(self.pe_mips.min()) if fleet.n_hosts else 0.0
        self.power_now_w = self._power(self._row_base, self.load_mips * self._steps_per_mips)
        self._fit = np.empty(fleet.n_hosts, dtype=np.bool_)
        self._scratch = np.empty(fleet.n_hosts, dtype=np.bool_)

    def util(self) -> FloatArray:
        """Return the working utilisation of every host (requested MIPS over capacity)."""
        return self.load_mips / self.capacity_mips

    def fitting_hosts(
        self, eligible: BoolArray, request_mips: float, ram_bytes: float, per_pe_mips: float, pes: int
    ) -> IntArray:
        """Return, ascending, the eligible hosts that can take an instance without passing the limit.

        A host fits when the request fits under its utilisation limit, its free memory holds the
        instance, and one of its processing elements is at least as fast as the request (a
        single-PE instance cannot use more than one PE).
        """
        fit, scratch = self._fit, self._scratch
        np.greater_equal(self.headroom_mips, request_mips - FIT_TOLERANCE_MIPS, out=fit)
        np.greater_equal(self.ram_free_bytes, ram_bytes, out=scratch)
        fit &= scratch
        if per_pe_mips > self._min_pe_mips:
            np.greater_equal(self.pe_mips, per_pe_mips, out=scratch)
            fit &= scratch
        if self.pes is not None:
            fit &= self.pes >= pes
        fit &= eligible
        return fit.nonzero()[0]

    def power_after(self, hosts: IntArray, request_mips: float) -> FloatArray:
        """Return the power (W) fitting ``hosts`` would draw with ``request_mips`` more load each.

        Only for hosts that fit (utilisation after at most 1), which is why it can skip clamping.
        """
        x = (self.load_mips[hosts] + request_mips) * self._steps_per_mips[hosts]
        index = self._row_base[hosts] + x.astype(np.int64)
        return self._intercept_flat[index] + self._slope_flat[index] * x

    def _power(self, row_base: IntArray, steps: FloatArray) -> FloatArray:
        """Interpolate power tables at ``steps`` (utilisation times the table's step count).

        The same arithmetic, operation for operation, as :meth:`power_after` and
        :meth:`_power_scalar`, so a host's power "now" and "after" are computed identically and
        exact ties between equal hosts stay ties. Utilisation above 1 draws the 100 % figure.
        """
        x = np.minimum(steps, float(self._top))
        index = row_base + x.astype(np.int64)
        return self._intercept_flat[index] + self._slope_flat[index] * x

    def _power_scalar(self, host: int, load_mips: float) -> float:
        x = min(load_mips * float(self._steps_per_mips[host]), float(self._top))
        index = int(self._row_base[host]) + int(x)
        return float(self._intercept_flat[index]) + float(self._slope_flat[index]) * x

    def move(self, source: int, target: int, request_mips: float, ram_bytes: float) -> None:
        """Plan one instance from ``source`` to ``target`` (either may be ``-1`` for "nowhere")."""
        if source >= 0:
            self._shift(source, -request_mips, -ram_bytes)
        if target >= 0:
            self._shift(target, request_mips, ram_bytes)

    def _shift(self, host: int, request_mips: float, ram_bytes: float) -> None:
        load = float(self.load_mips[host]) + request_mips
        self.load_mips[host] = load
        self.headroom_mips[host] -= request_mips
        self.ram_free_bytes[host] -= ram_bytes
        self.power_now_w[host] = self._power_scalar(host, load)

    def remove(self, hosts: IntArray, request_mips: FloatArray, ram_bytes: FloatArray) -> None:
        """Take many instances off their hosts at once (the selection step), vectorised."""
        n = self.load_mips.shape[0]
        freed_mips = np.bincount(hosts, weights=request_mips, minlength=n)
        self.load_mips -= freed_mips
        self.headroom_mips += freed_mips
        self.ram_free_bytes += np.bincount(hosts, weights=ram_bytes, minlength=n)
        touched = np.unique(hosts)
        self.power_now_w[touched] = self._power(
            self._row_base[touched], self.load_mips[touched] * self._steps_per_mips[touched]
        )


_EMPTY: IntArray = np.empty(0, dtype=np.int64)


class TargetPool:
    """Eligible target hosts split by IVN, over a shared :class:`HostLoadState`.

    Args:
        state: Working host load the pool tests against.
        eligible: Hosts this stage may place onto (before per-IVN split).
    """

    def __init__(self, state: HostLoadState, eligible: BoolArray) -> None:
        self._state = state
        self._masks = eligible[None, :] & state.ivn_masks
        n_ivn = self._masks.shape[0]
        self._headroom_bound = [math.inf] * n_ivn
        self._ram_bound = [math.inf] * n_ivn
        self._exact = [False] * n_ivn

    def exclude(self, host: int) -> None:
        """Remove ``host`` from the pool for the rest of the stage (bounds stay valid upper bounds)."""
        self._masks[:, host] = False

    def invalidate(self) -> None:
        """Forget the bounds, after eligible hosts *gained* headroom (an undone tentative plan)."""
        n_ivn = len(self._headroom_bound)
        self._headroom_bound = [math.inf] * n_ivn
        self._ram_bound = [math.inf] * n_ivn
        self._exact = [False] * n_ivn

    def fitting(self, ivn: int, request_mips: float, ram_bytes: float, per_pe_mips: float, pes: int) -> IntArray:
        """Return, ascending, the pool's hosts in IVN ``ivn`` that fit the instance."""
        if self._hopeless(ivn, request_mips, ram_bytes):
            return _EMPTY
        hosts = self._state.fitting_hosts(self._masks[ivn], request_mips, ram_bytes, per_pe_mips, pes)
        if hosts.size == 0:
            self._tighten(ivn)
        else:
            self._exact[ivn] = False  # the caller places onto one of them: bounds may loosen
        return hosts

    def fitting_elsewhere(
        self,
        ivn: int,
        request_mips: float,
        ram_bytes: float,
        per_pe_mips: float,
        pes: int,
        allowed_ivns: BoolArray | None,
    ) -> IntArray:
        """Return, ascending, the pool's fitting hosts outside IVN ``ivn`` in the ``allowed_ivns``."""
        others = [
            k
            for k in range(len(self._headroom_bound))
            if k != ivn
            and (allowed_ivns is None or bool(allowed_ivns[k]))
            and not self._hopeless(k, request_mips, ram_bytes)
        ]
        if not others:
            return _EMPTY
        mask = self._masks[others[0]] if len(others) == 1 else self._masks[others].any(axis=0)
        hosts = self._state.fitting_hosts(mask, request_mips, ram_bytes, per_pe_mips, pes)
        for k in others:
            if hosts.size == 0:
                self._tighten(k)
            else:
                self._exact[k] = False
        return hosts

    def _hopeless(self, ivn: int, request_mips: float, ram_bytes: float) -> bool:
        return request_mips - FIT_TOLERANCE_MIPS > self._headroom_bound[ivn] or ram_bytes > self._ram_bound[ivn]

    def _tighten(self, ivn: int) -> None:
        """Make the bounds exact, unless they already are (then recomputing would change nothing)."""
        if self._exact[ivn]:
            return
        mask = self._masks[ivn]
        headroom = self._state.headroom_mips[mask]
        self._headroom_bound[ivn] = float(headroom.max()) if headroom.size else -math.inf
        self._ram_bound[ivn] = float(self._state.ram_free_bytes[mask].max()) if headroom.size else -math.inf
        self._exact[ivn] = True


class FirstFit:
    """The lowest-indexed host that fits: cheapest rule and CloudSim's static placement."""

    name = "first_fit"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the first candidate."""
        return int(hosts[0])


class LeastLoaded:
    """The host with the lowest utilisation after placement: spreads load, favours headroom."""

    name = "least_loaded"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the candidate with the smallest resulting utilisation (ties → lowest index)."""
        after = (state.load_mips[hosts] + request_mips) / state.capacity_mips[hosts]
        return int(hosts[np.argmin(after)])


class PowerAwareBestFit:
    """PABFD (Beloglazov & Buyya): the host whose power draw grows least by taking the instance.

    Power comes from each host's SPECpower table, so heterogeneous hosts are compared by watts, not
    utilisation. "Now" is the working load (moves planned earlier in the round included), which is
    what makes a planned move affect later placements.
    """

    name = "power_aware_best_fit"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the candidate with the minimum ``P(u_after) - P(u_now)`` (ties → lowest index)."""
        increase = state.power_after(hosts, request_mips) - state.power_now_w[hosts]
        return int(hosts[np.argmin(increase)])


REFERENCE_TARGETS = {FirstFit.name: FirstFit, LeastLoaded.name: LeastLoaded, PowerAwareBestFit.name: PowerAwareBestFit}


def _instance_pes(fleet: FleetSnapshot) -> IntArray:
    return np.ones(fleet.n_instances, dtype=np.int64) if fleet.instance_pes is None else fleet.instance_pes


class ReferenceThresholdPolicy:
    """The pre-kernel ThresholdPolicy; parameters as the real one, validated there, not here."""

    def __init__(
        self,
        threshold: float = 0.8,
        target_selection: str = "power_aware_best_fit",
        instance_selection: str = "minimum_migration_time",
        underload_threshold: float | None = None,
        allow_cross_ivn: bool = True,
    ) -> None:
        self.threshold = threshold
        self.underload_threshold = underload_threshold
        self.allow_cross_ivn = allow_cross_ivn
        self._target = REFERENCE_TARGETS[target_selection]()
        self._selection: InstanceSelection = INSTANCE_SELECTIONS[instance_selection]()

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Return the moves that relieve overloaded hosts (and, if enabled, empty under-loaded ones)."""
        state = HostLoadState(fleet, self.threshold)
        util_now = state.util()
        overloaded = fleet.host_available & (util_now > self.threshold)
        received = np.zeros(fleet.n_hosts, dtype=np.bool_)
        moves: list[Move] = []
        if overloaded.any():
            self._relieve_overloads(fleet, state, util_now, overloaded, received, moves)
        if self.underload_threshold is not None:
            self._consolidate(fleet, state, self.underload_threshold, util_now, overloaded, received, moves)
        if not moves:
            return MigrationPlan.empty()
        assessments = {move.instance_id: move.risk for move in moves if move.risk is not None}
        return MigrationPlan(moves=tuple(moves), assessments=assessments)

    def _relieve_overloads(
        self,
        fleet: FleetSnapshot,
        state: HostLoadState,
        util_now: FloatArray,
        overloaded: BoolArray,
        received: BoolArray,
        moves: list[Move],
    ) -> None:
        inst_host = fleet.instance_host
        on_overloaded = np.zeros(fleet.n_instances, dtype=np.bool_)
        placed = inst_host >= 0
        on_overloaded[placed] = overloaded[inst_host[placed]]
        candidates = np.flatnonzero(on_overloaded & ~fleet.instance_in_migration)
        if candidates.size == 0:
            return
        # Order every overloaded host's candidates at once: by host, then selection key, then index.
        order = np.lexsort((self._selection.sort_key(fleet, candidates), inst_host[candidates]))
        candidates = candidates[order]
        hosts = inst_host[candidates]
        request = fleet.instance_cpu_request_mips[candidates]
        # CPU removed from the host *before* each candidate leaves: a cumulative sum restarted per host.
        cumulative = np.cumsum(request)
        first = np.flatnonzero(np.r_[True, hosts[1:] != hosts[:-1]])
        group_base = np.repeat(cumulative[first] - request[first], np.diff(np.r_[first, hosts.size]))
        removed_before = cumulative - request - group_base
        still_over = state.load_mips[hosts] - removed_before > self.threshold * state.capacity_mips[hosts]
        picked = candidates[still_over]
        sources = hosts[still_over]
        state.remove(sources, request[still_over], fleet.instance_ram_bytes[picked])

        by_request = np.argsort(-fleet.instance_cpu_request_mips[picked], kind="stable")
        pool = TargetPool(state, fleet.host_available & ~overloaded)
        cross_ivn = self.allow_cross_ivn and len(fleet.ivn_names) > 1
        allowed = fleet.instance_allowed_ivns
        inst_pes = _instance_pes(fleet)
        for inst, source in zip(picked[by_request].tolist(), sources[by_request].tolist(), strict=True):
            req = float(fleet.instance_cpu_request_mips[inst])
            ram = float(fleet.instance_ram_bytes[inst])
            ivn = int(fleet.host_ivn[source])
            per_pe, pes = req / int(inst_pes[inst]), int(inst_pes[inst])
            fitting = pool.fitting(ivn, req, ram, per_pe, pes)
            if fitting.size == 0 and cross_ivn:
                fitting = pool.fitting_elsewhere(ivn, req, ram, per_pe, pes, None if allowed is None else allowed[inst])
            if fitting.size == 0:
                state.move(-1, source, req, ram)  # fits nowhere: it stays where it is
                continue
            target = self._target.choose(state, fitting, req)
            state.move(-1, target, req, ram)
            received[target] = True
            moves.append(_move(fleet, inst, source, target, float(util_now[source]), MoveReason.OVERLOAD))

    def _consolidate(
        self,
        fleet: FleetSnapshot,
        state: HostLoadState,
        underload_threshold: float,
        util_now: FloatArray,
        overloaded: BoolArray,
        received: BoolArray,
        moves: list[Move],
    ) -> None:
        util = state.util()
        active = fleet.host_available & ~overloaded & (util > 0.0)
        inst_host = fleet.instance_host
        placed = np.flatnonzero(inst_host >= 0)
        # A host with an instance mid-migration cannot be emptied now, so it is no candidate.
        busy = np.bincount(inst_host[placed], weights=fleet.instance_in_migration[placed], minlength=fleet.n_hosts)
        candidates = np.flatnonzero(active & (util < underload_threshold) & ~received & (busy == 0))
        if candidates.size == 0:
            return
        candidates = candidates[np.argsort(util[candidates], kind="stable")]
        # Each host's instances, contiguous and by decreasing request, to evacuate in that order.
        by_host = placed[np.lexsort((-fleet.instance_cpu_request_mips[placed], inst_host[placed]))]
        host_sorted = inst_host[by_host]
        starts = np.searchsorted(host_sorted, candidates, side="left").tolist()
        ends = np.searchsorted(host_sorted, candidates, side="right").tolist()
        pool = TargetPool(state, active)
        request_all = fleet.instance_cpu_request_mips
        ram_all = fleet.instance_ram_bytes
        inst_pes = _instance_pes(fleet)
        for host, start, end in zip(candidates.tolist(), starts, ends, strict=True):
            if received[host]:
                continue
            pool.exclude(host)  # examined: never a target from now on
            ivn = int(fleet.host_ivn[host])
            members = by_host[start:end].tolist()
            planned: list[tuple[int, int]] = []
            for inst in members:
                req, ram = float(request_all[inst]), float(ram_all[inst])
                fitting = pool.fitting(ivn, req, ram, req / int(inst_pes[inst]), int(inst_pes[inst]))
                if fitting.size == 0:
                    break
                target = self._target.choose(state, fitting, req)
                state.move(host, target, req, ram)
                planned.append((inst, target))
            if len(planned) < len(members):  # all-or-nothing: undo this host's partial plan
                for inst, target in reversed(planned):
                    state.move(target, host, float(request_all[inst]), float(ram_all[inst]))
                if planned:
                    pool.invalidate()
                continue
            risk_util = float(util_now[host])
            for inst, target in planned:
                received[target] = True
                moves.append(_move(fleet, inst, host, target, risk_util, MoveReason.UNDERLOAD))


def _move(fleet: FleetSnapshot, inst: int, source: int, target: int, util: float, reason: MoveReason) -> Move:
    instance_id = fleet.instance_ids[inst]
    risk = RiskAssessment(instance_id, risk_score=min(util, 1.0), predicted_load=util, health_metrics={})
    return Move(
        instance_id,
        fleet.ivn_names[int(fleet.host_ivn[target])],
        fleet.host_ids[target],
        reason=reason,
        risk=risk,
        source_ivn=fleet.ivn_names[int(fleet.host_ivn[source])],
    )
