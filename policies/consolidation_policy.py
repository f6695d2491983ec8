"""CloudSim-style consolidation: an overload detector plus a VM-selection rule, placed with PABFD.

This composes :mod:`policies.overload_detectors` and :mod:`policies.vm_selection` into the round of
``PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation`` (reference ``cloudsim-planetlab.md``
§1.8):

1. **Detection.** The detector flags overloaded hosts (with history, for IQR/MAD/LR/LRR).
2. **Selection.** Per overloaded host in index order, the selection rule picks one instance at a
   time; it leaves the host's working state and the detector is asked again, until the host is no
   longer overloaded or no instance is left that is not already migrating.
3. **Placement.** The selected instances, by decreasing CPU request (stable), go to the host the
   target rule (PABFD by default) picks among available, non-overloaded hosts of their IVN that fit
   the instance within full capacity and that the detector would not call overloaded with the
   instance added, history included (``isHostOverUtilizedAfterAllocation``); as in CloudSim, hosts
   that had no load at the start of the round skip that test. An instance that fits nowhere stays.
4. **Under-load evacuation** (optional). Hosts with ``0 < util < 1`` at the start of the round,
   least utilised first, are emptied all-or-nothing onto hosts that are neither overloaded, idle at
   the start, nor examined candidates, with the same placement test. A host that received an
   instance this round is not evacuated, so no instance moves twice (CloudSim's duplicate-move quirk
   of §1.8 step 5 is *not* reproduced, as in :class:`~policies.threshold_policy.ThresholdPolicy`).

Fit and target choice use the compiled :func:`policies.placement_kernels.choose_target`; the
detector's after-allocation test, which needs each host's history, is one vectorised detector call
per instance placed. This follows CloudSim's decisions, not its accounting: PABFD scores power at the
round's working loads rather than at the last host update, and the twin's utilisation history is
whatever the telemetry gives, so the plans are not expected to equal CloudSim's move for move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from policies import cloudsim_round, detector_kernels, placement_kernels
from policies.errors import PolicyConfigError
from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray
from policies.overload_detectors import (
    HostLoad,
    InterQuartileRange,
    LocalRegression,
    LocalRegressionRobust,
    MedianAbsoluteDeviation,
    OverloadDetector,
    StaticThreshold,
)
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment
from policies.target_selection import TARGET_SELECTIONS
from policies.vm_selection import (
    MaximumCorrelation,
    MinimumMigrationTime,
    MinimumUtilization,
    RandomSelection,
    VmSelection,
)

_SAME_IVN = np.bool_(True)
_LAZY_CHECKS = 4
"""Single-host detector checks per placement before the remaining candidates are checked at once."""
_MB = 1_000_000  # bytes in CloudSim's MB (its migration time is RAM_MB / 62.5 s)
_FULL_CAPACITY = 1.0  # CloudSim's isSuitableForVm: the request must fit the host's free MIPS.


class _WorkingLoad:
    """Host utilisation, history and largest memory under the round's tentative placement.

    CloudSim moves VMs temporarily (``vmDestroy``/``vmCreate``) while it plans, and the detector
    sees those moves; this keeps the same view incrementally instead of rebuilding it per query.
    """

    def __init__(self, fleet: FleetSnapshot, placement: IntArray) -> None:
        self.fleet = fleet
        self.placement = placement
        capacity = fleet.instance_cpu_capacity_mips
        self._vm_history_mips = np.ascontiguousarray(
            np.nan_to_num(fleet.instance_cpu_history * capacity[:, None], nan=0.0), dtype=np.float64
        )
        self._vm_observed = (~np.isnan(fleet.instance_cpu_history)).astype(np.int64)
        start = HostLoad.of(fleet)
        self.util = np.array(start.util, dtype=np.float64)
        self._history_mips = np.ascontiguousarray(
            np.nan_to_num(start.history, nan=0.0) * fleet.host_cpu_capacity_mips[:, None], dtype=np.float64
        )
        self._seen = np.zeros(self._history_mips.shape, dtype=np.int64)
        placed = placement >= 0
        np.add.at(self._seen, placement[placed], self._vm_observed[placed])
        self.max_ram = np.array(start.max_ram_bytes, dtype=np.float64)
        self.request = np.ascontiguousarray(fleet.instance_cpu_request_mips, dtype=np.float64)
        self.host_capacity = np.ascontiguousarray(fleet.host_cpu_capacity_mips, dtype=np.float64)
        self.ram = np.ascontiguousarray(fleet.instance_ram_bytes, dtype=np.float64)
        self.vm_capacity = np.ascontiguousarray(capacity, dtype=np.float64)
        self.vm_history = np.ascontiguousarray(fleet.instance_cpu_history, dtype=np.float64)
        self.dirty: set[int] = set()
        """Hosts whose placement changed since the kernel host state was last refreshed."""

    def move(self, instance: int, host: int, sign: int) -> None:
        """Add (``sign = 1``) or remove (``sign = -1``) ``instance`` on ``host``."""
        detector_kernels.move_instance(
            self.util,
            self._history_mips,
            self._seen,
            self.placement,
            self.max_ram,
            self._vm_history_mips,
            self._vm_observed,
            self.request,
            self.host_capacity,
            self.ram,
            instance,
            host,
            sign,
        )
        self.dirty.add(host)

    def overloaded_after(self, kernel: int, safety: float, host: int, instance: int) -> int:
        """The compiled detector ``kernel``'s verdict on ``host`` with ``instance`` added (1, 0 or undecided)."""
        capacity = self.host_capacity[host]
        return int(
            detector_kernels.overloaded_after(
                kernel,
                safety,
                float(self.util[host] + self.request[instance] / capacity),
                float(capacity),
                self._history_mips[host],
                self._seen[host],
                self.vm_history[instance],
                float(self.vm_capacity[instance]),
                float(max(self.max_ram[host], self.ram[instance])),
            )
        )

    def load(self, hosts: IntArray) -> HostLoad:
        """Return the detector's view of ``hosts`` now."""
        history = self._history_mips[hosts] / self.fleet.host_cpu_capacity_mips[hosts, None]
        return HostLoad(self.util[hosts], np.where(self._seen[hosts] == 0, np.nan, history), self.max_ram[hosts])


class ConsolidationPolicy:
    """CloudSim 3.0.3's migration round: a detector says who is overloaded, a rule picks who leaves.

    Args:
        detector: Overload detector (:mod:`policies.overload_detectors`).
        selection: VM-selection rule (:mod:`policies.vm_selection`).
        target_selection: Name of the rule choosing among fitting hosts (see
            :data:`policies.target_selection.TARGET_SELECTIONS`); PABFD by default.
        underload: Whether to evacuate under-loaded hosts after overload relief.
        cloudsim_quirks: Make CloudSim 3.0.3's decisions exactly, bookkeeping quirks included
            (:mod:`policies.cloudsim_round`): PABFD against the power of the last accounting
            update, allocation capped at PE MIPS, duplicate moves of the under-load step. Needs a
            fleet view with ``host_cpu_util_last`` and ``instance_list_rank`` (the twin's
            ``accounting = "cloudsim"``); always PABFD with under-load evacuation.

    Raises:
        PolicyConfigError: Unknown target rule, ``underload`` or ``cloudsim_quirks`` not a bool.
    """

    name = "consolidation"

    def __init__(
        self,
        detector: OverloadDetector,
        selection: VmSelection,
        target_selection: str = "power_aware_best_fit",
        underload: bool = True,
        cloudsim_quirks: bool = False,
    ) -> None:
        if not isinstance(cloudsim_quirks, bool):
            raise PolicyConfigError("cloudsim_quirks", f"must be true or false, got {cloudsim_quirks!r}")
        if not isinstance(target_selection, str) or target_selection not in TARGET_SELECTIONS:
            valid = ", ".join(sorted(TARGET_SELECTIONS))
            raise PolicyConfigError("target_selection", f"unknown rule {target_selection!r}; valid: {valid}")
        if not isinstance(underload, bool):
            raise PolicyConfigError("underload", f"must be true or false, got {underload!r}")
        self.detector = detector
        self.selection = selection
        self.target_selection = target_selection
        self.underload = underload
        self.cloudsim_quirks = cloudsim_quirks
        self._rule = TARGET_SELECTIONS[target_selection]().kernel_id
        self._kernel = _detector_kernel(detector)

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Return the moves that relieve overloaded hosts and, if enabled, empty under-loaded ones."""
        if self.cloudsim_quirks:
            return self._decide_cloudsim(fleet)
        hosts, instances, _ = placement_kernels.fleet_arrays(fleet)
        origin = instances.host.copy()
        work = _WorkingLoad(fleet, instances.host)  # the kernels read the same placement array
        all_hosts = np.arange(fleet.n_hosts)
        util_start = fleet.host_cpu_util()
        overloaded = self.detector.overloaded(work.load(all_hosts)) & fleet.host_available
        evicted = self._select(fleet, work, overloaded)
        placement_kernels.load_hosts(hosts, instances, _FULL_CAPACITY)
        work.dirty.clear()
        active_start = util_start > 0.0
        moves: list[tuple[int, int, int, MoveReason]] = []
        eligible = fleet.host_available & ~overloaded
        received = np.zeros(fleet.n_hosts, dtype=np.bool_)
        order = np.argsort(-fleet.instance_cpu_request_mips[evicted], kind="stable")
        for i in np.asarray(evicted, dtype=np.int64)[order].tolist():
            source = int(origin[i])
            target = self._place(fleet, hosts, instances, work, i, source, eligible, active_start)
            if target < 0:
                self._apply(hosts, instances, work, i, source)
                continue
            received[target] = True
            moves.append((i, source, target, MoveReason.OVERLOAD))
        if self.underload:
            moves.extend(self._evacuate(fleet, hosts, instances, work, origin, overloaded, received, util_start))
        return _plan(fleet, moves, util_start)

    def _decide_cloudsim(self, fleet: FleetSnapshot) -> MigrationPlan:
        """CloudSim's round on its own bookkeeping (:func:`policies.cloudsim_round.optimize_allocation`)."""
        if fleet.host_cpu_util_last is None or fleet.instance_list_rank is None:
            raise PolicyConfigError(
                "cloudsim_quirks",
                "needs a world that books like CloudSim (host_cpu_util_last, instance_list_rank): "
                "run the scenario with accounting = 'cloudsim'",
            )
        detector, safety = _cloudsim_detector(self.detector)
        selection = _cloudsim_selection(self.selection)
        hist = fleet.instance_cpu_history
        observed = ~np.isnan(hist)
        newest_first = np.nan_to_num(hist[:, ::-1], nan=0.0)
        draws = (
            self.selection.rng.random(fleet.n_instances + 1)  # type: ignore[attr-defined]
            if selection == cloudsim_round.RS
            else np.zeros(1)
        )
        vms, sources, targets, why, _ = cloudsim_round.optimize_allocation(
            host_of=fleet.instance_host,
            list_rank=fleet.instance_list_rank,
            request_mips=fleet.instance_cpu_request_mips,
            vm_mips=fleet.instance_cpu_capacity_mips,
            ram_mb=fleet.instance_ram_bytes / _MB,
            in_migration=fleet.instance_in_migration,
            history_newest_first=newest_first,
            history_len=observed.sum(axis=1),
            host_total_mips=fleet.host_cpu_capacity_mips,
            host_pe_mips=fleet.host_pe_mips,
            host_power_w=fleet.host_power_w,
            host_util_last=fleet.host_cpu_util_last,
            detector=detector,
            safety=safety,
            selection=selection,
            draws=draws,
        )
        reasons = (MoveReason.OVERLOAD, MoveReason.UNDERLOAD)
        moves = [
            (int(v), int(s), int(t), reasons[int(w)])
            for v, s, t, w in zip(vms.tolist(), sources.tolist(), targets.tolist(), why.tolist(), strict=True)
        ]
        return _plan(fleet, moves, fleet.host_cpu_util_last)

    def _select(self, fleet: FleetSnapshot, work: _WorkingLoad, overloaded: BoolArray) -> list[int]:
        """Take instances off each overloaded host until the detector clears it (§1.8 step 3)."""
        evicted: list[int] = []
        for h in np.flatnonzero(overloaded).tolist():
            members = np.flatnonzero((work.placement == h) & ~fleet.instance_in_migration)
            while members.size:
                pick = self.selection.pick(fleet, members)
                members = members[members != pick]
                work.move(pick, h, -1)
                evicted.append(pick)
                if not self.detector.overloaded(work.load(np.array([h])))[0]:
                    break
        return evicted

    def _place(
        self,
        fleet: FleetSnapshot,
        hosts: placement_kernels.Hosts,
        instances: placement_kernels.Instances,
        work: _WorkingLoad,
        i: int,
        source: int,
        eligible: BoolArray,
        active_start: BoolArray,
    ) -> int:
        """Choose and apply a target for unplaced instance ``i``; return it, or -1 if none passes.

        Only hosts the target rule could pick need the detector's after-allocation verdict, so it is
        asked lazily: the rule picks among eligible hosts, and while its pick was active at the start
        of the round and would be overloaded with ``i``, that host is struck off and the rule asked
        again. The rule scores each host on its own and keeps the first strictly best, so striking
        rejected hosts one by one ends at the host it would pick with all of them struck at once.
        After :data:`_LAZY_CHECKS` rejections the remaining candidates are judged in one vectorised
        call. The detector is row-wise, so a host's verdict is the same whichever hosts it is asked
        with.
        """
        ivn = int(fleet.host_ivn[source])
        allowed = np.array(eligible, dtype=np.bool_)
        rule = self._rule
        for _ in range(_LAZY_CHECKS):
            target = int(placement_kernels.choose_target(hosts, instances, i, allowed, ivn, _SAME_IVN, rule))
            if target < 0 or not active_start[target] or not self._overloaded_after_one(fleet, work, target, i):
                break
            allowed[target] = False
        else:
            pending = np.flatnonzero(allowed & active_start & (hosts.ivn == ivn))
            if pending.size:
                allowed[pending[self._overloaded_after(fleet, work, pending, i)]] = False
            target = int(placement_kernels.choose_target(hosts, instances, i, allowed, ivn, _SAME_IVN, rule))
        if target >= 0:
            self._apply(hosts, instances, work, i, target)
        return target

    def _overloaded_after_one(self, fleet: FleetSnapshot, work: _WorkingLoad, host: int, i: int) -> bool:
        """:meth:`_overloaded_after` for one host, compiled where the detector has a kernel."""
        if self._kernel is not None:
            verdict = work.overloaded_after(self._kernel[0], self._kernel[1], host, i)
            if verdict != detector_kernels.UNDECIDED:
                return verdict == 1
        return bool(self._overloaded_after(fleet, work, np.array([host]), i)[0])

    def _overloaded_after(self, fleet: FleetSnapshot, work: _WorkingLoad, hosts: IntArray, i: int) -> BoolArray:
        """The detector's verdict on ``hosts`` with instance ``i`` added (``HostLoad.with_instance``)."""
        base = work.load(hosts)
        return self.detector.overloaded(base.with_instance(fleet, np.arange(hosts.size), i, hosts))

    @staticmethod
    def _apply(
        hosts: placement_kernels.Hosts, instances: placement_kernels.Instances, work: _WorkingLoad, i: int, host: int
    ) -> None:
        work.move(i, host, 1)
        for h in work.dirty:  # what load_hosts would recompute differently: the hosts that changed
            detector_kernels.refresh_host(
                h,
                _FULL_CAPACITY,
                instances.host,
                instances.request_mips,
                instances.ram_bytes,
                hosts.capacity_mips,
                hosts.ram_bytes,
                hosts.steps_per_mips,
                hosts.intercept_w,
                hosts.slope_w,
                hosts.load_mips,
                hosts.headroom_mips,
                hosts.ram_free_bytes,
                hosts.power_now_w,
            )
        work.dirty.clear()

    def _evacuate(
        self,
        fleet: FleetSnapshot,
        hosts: placement_kernels.Hosts,
        instances: placement_kernels.Instances,
        work: _WorkingLoad,
        origin: IntArray,
        overloaded: BoolArray,
        received: BoolArray,
        util_start: FloatArray,
    ) -> list[tuple[int, int, int, MoveReason]]:
        """Empty under-loaded hosts all-or-nothing, least utilised first (§1.8 step 5)."""
        movable = (origin >= 0) & ~fleet.instance_in_migration
        has_movable = np.bincount(origin[movable], minlength=fleet.n_hosts) > 0
        idle_start = util_start == 0.0
        candidate = fleet.host_available & ~overloaded & (util_start > 0.0) & (util_start < 1.0) & has_movable
        order = np.flatnonzero(candidate)
        order = order[np.argsort(util_start[order], kind="stable")]
        eligible = fleet.host_available & ~overloaded & ~idle_start
        active_start = ~idle_start
        moves: list[tuple[int, int, int, MoveReason]] = []
        for host in order.tolist():
            if received[host]:
                continue
            eligible[host] = False
            members = np.flatnonzero((work.placement == host) & ~fleet.instance_in_migration)
            members = members[np.argsort(-fleet.instance_cpu_request_mips[members], kind="stable")]
            planned: list[tuple[int, int]] = []
            for i in members.tolist():
                work.move(i, host, -1)
                target = self._place(fleet, hosts, instances, work, i, host, eligible, active_start)
                if target < 0:
                    self._apply(hosts, instances, work, i, host)
                    break
                planned.append((i, target))
            if len(planned) < members.size:
                for i, target in reversed(planned):
                    work.move(i, target, -1)
                    self._apply(hosts, instances, work, i, host)
                continue
            for i, target in planned:
                received[target] = True
                moves.append((i, host, target, MoveReason.UNDERLOAD))
        return moves


def _detector_kernel(detector: OverloadDetector) -> tuple[int, float] | None:
    """The compiled after-allocation check of ``detector`` and its parameter, if it has one.

    Only the exact classes qualify: a subclass may decide differently.
    """
    kind = type(detector)
    if kind is LocalRegressionRobust:
        return detector_kernels.LRR, float(detector.safety)  # type: ignore[attr-defined]
    if kind is StaticThreshold:
        return detector_kernels.THR, float(detector.threshold)  # type: ignore[attr-defined]
    if kind is InterQuartileRange:
        return detector_kernels.IQR, float(detector.safety)  # type: ignore[attr-defined]
    if kind is MedianAbsoluteDeviation:
        return detector_kernels.MAD, float(detector.safety)  # type: ignore[attr-defined]
    if kind is LocalRegression:
        return detector_kernels.LR, float(detector.safety)  # type: ignore[attr-defined]
    return None


def _cloudsim_detector(detector: OverloadDetector) -> tuple[int, float]:
    """The CloudSim round's detector id and parameter; LRR decides as LR there (reference §1.9)."""
    kind = type(detector)
    if kind is StaticThreshold:
        return cloudsim_round.THR, float(detector.threshold)  # type: ignore[attr-defined]
    if kind is InterQuartileRange:
        return cloudsim_round.IQR, float(detector.safety)  # type: ignore[attr-defined]
    if kind is MedianAbsoluteDeviation:
        return cloudsim_round.MAD, float(detector.safety)  # type: ignore[attr-defined]
    if kind in (LocalRegression, LocalRegressionRobust):
        return cloudsim_round.LR, float(detector.safety)  # type: ignore[attr-defined]
    raise PolicyConfigError("cloudsim_quirks", f"CloudSim has no detector like {type(detector).__name__}")


def _cloudsim_selection(selection: VmSelection) -> int:
    """The CloudSim round's VM-selection id."""
    kinds = {
        MinimumMigrationTime: cloudsim_round.MMT,
        MinimumUtilization: cloudsim_round.MU,
        MaximumCorrelation: cloudsim_round.MC,
        RandomSelection: cloudsim_round.RS,
    }
    kind = kinds.get(type(selection))
    if kind is None:
        raise PolicyConfigError("cloudsim_quirks", f"CloudSim has no VM selection like {type(selection).__name__}")
    return kind


def _plan(fleet: FleetSnapshot, moves: list[tuple[int, int, int, MoveReason]], util: FloatArray) -> MigrationPlan:
    if not moves:
        return MigrationPlan.empty()
    out = []
    for i, source, target, reason in moves:
        instance_id = fleet.instance_ids[i]
        load = float(util[source])
        risk = RiskAssessment(instance_id, risk_score=min(load, 1.0), predicted_load=load, health_metrics={})
        out.append(
            Move(
                instance_id,
                fleet.ivn_names[int(fleet.host_ivn[target])],
                fleet.host_ids[target],
                reason=reason,
                risk=risk,
                source_ivn=fleet.ivn_names[int(fleet.host_ivn[source])],
            )
        )
    return MigrationPlan(moves=tuple(out), assessments={m.instance_id: m.risk for m in out if m.risk is not None})


def _safety(value: Any) -> float:
    """Validate a detector parameter: a finite positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
        raise PolicyConfigError("safety", f"must be a positive number, got {value!r}")
    return float(value)


def _factory(
    name: str,
    detector: Callable[[float], OverloadDetector],
    default_safety: float,
    selection: Callable[..., VmSelection],
) -> Callable[..., ConsolidationPolicy]:
    summary = (
        f"CloudSim {name.upper()}: {getattr(detector, 'name', '')} detector, {getattr(selection, 'name', '')} "
        f"selection (safety parameter default {default_safety})."
    )
    if selection is RandomSelection:

        def make_random(
            safety: float = default_safety,
            target_selection: str = "power_aware_best_fit",
            underload: bool = True,
            cloudsim_quirks: bool = False,
            *,
            rng: np.random.Generator,
        ) -> ConsolidationPolicy:
            policy = ConsolidationPolicy(
                detector(_safety(safety)), RandomSelection(rng), target_selection, underload, cloudsim_quirks
            )
            policy.name = name
            return policy

        make_random.__doc__ = summary + " Draws come from the generator the caller injects."
        return make_random

    def make(
        safety: float = default_safety,
        target_selection: str = "power_aware_best_fit",
        underload: bool = True,
        cloudsim_quirks: bool = False,
    ) -> ConsolidationPolicy:
        policy = ConsolidationPolicy(
            detector(_safety(safety)), selection(), target_selection, underload, cloudsim_quirks=cloudsim_quirks
        )
        policy.name = name
        return policy

    make.__doc__ = summary
    return make


_DETECTORS: tuple[tuple[str, Callable[[float], OverloadDetector], float], ...] = (
    ("thr", StaticThreshold, 0.8),
    ("iqr", InterQuartileRange, 1.5),
    ("mad", MedianAbsoluteDeviation, 2.5),
    ("lr", LocalRegression, 1.2),
    ("lrr", LocalRegressionRobust, 1.2),
)
_SELECTIONS: tuple[tuple[str, Callable[..., VmSelection]], ...] = (
    ("mmt", MinimumMigrationTime),
    ("mc", MaximumCorrelation),
    ("mu", MinimumUtilization),
    ("rs", RandomSelection),
)

CONSOLIDATION_POLICIES: Mapping[str, Callable[..., ConsolidationPolicy]] = {
    f"{d}-{v}": _factory(f"{d}-{v}", detector, safety, selection)
    for d, detector, safety in _DETECTORS
    for v, selection in _SELECTIONS
}
"""Every CloudSim detector x VM-selection combination, the paper's safety parameters as defaults
(reference §1.9): ``thr-mmt``, ``iqr-mc``, ``lr-rs``, ...

``safety`` is the detector's parameter ``s`` (for THR, the threshold itself). The ``*-rs`` factories
take the generator their draws come from as the keyword ``rng``, injected by the caller
(:func:`policies.registry.make_policy`), never from a parameter file.
"""
