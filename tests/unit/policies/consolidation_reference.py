"""The ConsolidationPolicy before its placement checks were narrowed and compiled, kept as a test oracle.

Every placement asks the detector about every host (one vectorised call over the whole fleet), as
``policies/consolidation_policy.py`` did when it was introduced. Plans of the two must be identical,
ties included; ``test_consolidation_equivalence.py`` checks that on random fleets with histories.
"""

from __future__ import annotations

import numpy as np

from policies import placement_kernels
from policies.errors import PolicyConfigError
from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray
from policies.overload_detectors import (
    HostLoad,
    OverloadDetector,
)
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment
from policies.target_selection import TARGET_SELECTIONS
from policies.vm_selection import VmSelection

_SAME_IVN = np.bool_(True)
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
        self._vm_history_mips = np.nan_to_num(fleet.instance_cpu_history * capacity[:, None], nan=0.0)
        self._vm_observed = (~np.isnan(fleet.instance_cpu_history)).astype(np.int64)
        start = HostLoad.of(fleet)
        self.util = start.util.copy()
        self._history_mips = np.nan_to_num(start.history, nan=0.0) * fleet.host_cpu_capacity_mips[:, None]
        self._seen = np.zeros(self._history_mips.shape, dtype=np.int64)
        placed = placement >= 0
        np.add.at(self._seen, placement[placed], self._vm_observed[placed])
        self.max_ram = start.max_ram_bytes.copy()

    def move(self, instance: int, host: int, sign: int) -> None:
        """Add (``sign = 1``) or remove (``sign = -1``) ``instance`` on ``host``."""
        fleet = self.fleet
        self.util[host] += sign * fleet.instance_cpu_request_mips[instance] / fleet.host_cpu_capacity_mips[host]
        self._history_mips[host] += sign * self._vm_history_mips[instance]
        self._seen[host] += sign * self._vm_observed[instance]
        self.placement[instance] = host if sign > 0 else -1
        members = self.placement == host
        self.max_ram[host] = float(fleet.instance_ram_bytes[members].max()) if members.any() else 0.0

    def load(self, hosts: IntArray) -> HostLoad:
        """Return the detector's view of ``hosts`` now."""
        history = self._history_mips[hosts] / self.fleet.host_cpu_capacity_mips[hosts, None]
        return HostLoad(self.util[hosts], np.where(self._seen[hosts] == 0, np.nan, history), self.max_ram[hosts])


class ReferenceConsolidationPolicy:
    """CloudSim 3.0.3's migration round: a detector says who is overloaded, a rule picks who leaves.

    Args:
        detector: Overload detector (:mod:`policies.overload_detectors`).
        selection: VM-selection rule (:mod:`policies.vm_selection`).
        target_selection: Name of the rule choosing among fitting hosts (see
            :data:`policies.target_selection.TARGET_SELECTIONS`); PABFD by default.
        underload: Whether to evacuate under-loaded hosts after overload relief.

    Raises:
        PolicyConfigError: Unknown target rule, or ``underload`` not a bool.
    """

    name = "consolidation"

    def __init__(
        self,
        detector: OverloadDetector,
        selection: VmSelection,
        target_selection: str = "power_aware_best_fit",
        underload: bool = True,
    ) -> None:
        if not isinstance(target_selection, str) or target_selection not in TARGET_SELECTIONS:
            valid = ", ".join(sorted(TARGET_SELECTIONS))
            raise PolicyConfigError("target_selection", f"unknown rule {target_selection!r}; valid: {valid}")
        if not isinstance(underload, bool):
            raise PolicyConfigError("underload", f"must be true or false, got {underload!r}")
        self.detector = detector
        self.selection = selection
        self.target_selection = target_selection
        self.underload = underload
        self._rule = TARGET_SELECTIONS[target_selection]().kernel_id

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Return the moves that relieve overloaded hosts and, if enabled, empty under-loaded ones."""
        hosts, instances, _ = placement_kernels.fleet_arrays(fleet)
        origin = instances.host.copy()
        work = _WorkingLoad(fleet, instances.host)  # the kernels read the same placement array
        all_hosts = np.arange(fleet.n_hosts)
        util_start = fleet.host_cpu_util()
        overloaded = self.detector.overloaded(work.load(all_hosts)) & fleet.host_available
        evicted = self._select(fleet, work, overloaded)
        placement_kernels.load_hosts(hosts, instances, _FULL_CAPACITY)
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
        """Choose and apply a target for unplaced instance ``i``; return it, or -1 if none passes."""
        all_hosts = np.arange(fleet.n_hosts)
        after = self.detector.overloaded(work.load(all_hosts).with_instance(fleet, all_hosts, i))
        allowed = np.ascontiguousarray(eligible & ~(active_start & after))
        ivn = int(fleet.host_ivn[source])
        target = int(placement_kernels.choose_target(hosts, instances, i, allowed, ivn, _SAME_IVN, self._rule))
        if target >= 0:
            self._apply(hosts, instances, work, i, target)
        return target

    @staticmethod
    def _apply(
        hosts: placement_kernels.Hosts, instances: placement_kernels.Instances, work: _WorkingLoad, i: int, host: int
    ) -> None:
        work.move(i, host, 1)
        placement_kernels.load_hosts(hosts, instances, _FULL_CAPACITY)

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
