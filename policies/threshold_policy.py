"""Static-threshold migration (CloudSim's THR family): relieve overloaded hosts, optionally consolidate.

Risk is the host's current utilisation (requested MIPS over capacity). A round has two stages:

1. **Overload relief.** Every available host above ``threshold`` sheds instances, in the order of the
   instance-selection rule (MMT by default), until its projected utilisation is back at or under the
   threshold. The shed instances, by decreasing CPU request, are placed with the target-selection rule
   (PABFD by default) on hosts of the same IVN that are available, not overloaded, have the memory and
   a fast-enough processing element, and stay at or under the threshold. If none fits and cross-IVN
   moves are allowed, hosts of other permitted IVNs are tried; such a move is carried out by the
   migration workflow rather than a live migration. An instance that fits nowhere stays.
2. **Under-load consolidation** (only with ``underload_threshold``). Hosts with
   ``0 < util < underload_threshold``, least utilised first, are evacuated all-or-nothing onto hosts
   of their IVN that are neither overloaded, idle, nor already examined as candidates, so that they
   can be switched off. A host that received an instance this round is not evacuated, so no instance
   moves twice in one round (CloudSim 3.0.3 lets that happen by accident; see the reference §1.8).

Working copies of host load are updated as the plan is built, so each placement sees the earlier
ones. Only the instances being placed are looped over in Python; everything over hosts is numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from policies.errors import PolicyConfigError
from policies.fleet import BoolArray, FleetSnapshot, FloatArray
from policies.host_load_state import HostLoadState
from policies.instance_selection import INSTANCE_SELECTIONS, InstanceSelection
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment
from policies.target_pool import TargetPool
from policies.target_selection import TARGET_SELECTIONS, TargetSelection

Rule = TypeVar("Rule")


class ThresholdPolicy:
    """Move instances off hosts whose CPU utilisation passes a fixed threshold.

    Args:
        threshold: Utilisation above which a host is overloaded, in (0, 1]; also the ceiling no
            target may pass after placement.
        target_selection: Name of the rule choosing among fitting hosts (see
            :data:`policies.target_selection.TARGET_SELECTIONS`).
        instance_selection: Name of the rule ordering an overloaded host's instances (see
            :data:`policies.instance_selection.INSTANCE_SELECTIONS`).
        underload_threshold: Utilisation under which a host is evacuated to save power, in (0, 1];
            ``None`` disables consolidation.
        allow_cross_ivn: Whether an instance that fits nowhere in its own IVN may be moved to another.

    Raises:
        PolicyConfigError: A parameter is out of range or of the wrong type, named in the message.
    """

    name = "threshold"

    def __init__(
        self,
        threshold: float = 0.8,
        target_selection: str = "power_aware_best_fit",
        instance_selection: str = "minimum_migration_time",
        underload_threshold: float | None = None,
        allow_cross_ivn: bool = True,
    ) -> None:
        self.threshold = _fraction("threshold", threshold)
        self.underload_threshold = (
            None if underload_threshold is None else _fraction("underload_threshold", underload_threshold)
        )
        if not isinstance(allow_cross_ivn, bool):
            raise PolicyConfigError("allow_cross_ivn", f"must be true or false, got {allow_cross_ivn!r}")
        self.allow_cross_ivn = allow_cross_ivn
        self.target_selection = target_selection
        self.instance_selection = instance_selection
        self._target: TargetSelection = _named("target_selection", target_selection, TARGET_SELECTIONS)()
        self._selection: InstanceSelection = _named("instance_selection", instance_selection, INSTANCE_SELECTIONS)()

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
        for inst, source in zip(picked[by_request].tolist(), sources[by_request].tolist(), strict=True):
            req = float(fleet.instance_cpu_request_mips[inst])
            ram = float(fleet.instance_ram_bytes[inst])
            ivn = int(fleet.host_ivn[source])
            fitting = pool.fitting(ivn, req, ram)
            if fitting.size == 0 and cross_ivn:
                fitting = pool.fitting_elsewhere(ivn, req, ram, None if allowed is None else allowed[inst])
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
        for host, start, end in zip(candidates.tolist(), starts, ends, strict=True):
            if received[host]:
                continue
            pool.exclude(host)  # examined: never a target from now on
            ivn = int(fleet.host_ivn[host])
            members = by_host[start:end].tolist()
            planned: list[tuple[int, int]] = []
            for inst in members:
                req, ram = float(request_all[inst]), float(ram_all[inst])
                fitting = pool.fitting(ivn, req, ram)
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


def _fraction(parameter: str, value: Any) -> float:
    """Validate a utilisation parameter in (0, 1] and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(parameter, f"must be a number in (0, 1], got {value!r}")
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise PolicyConfigError(parameter, f"must be in (0, 1], got {value!r}")
    return float(value)


def _named(parameter: str, value: Any, choices: Mapping[str, Callable[[], Rule]]) -> Callable[[], Rule]:
    """Look a rule up by name, or fail naming the parameter and the valid names."""
    if not isinstance(value, str) or value not in choices:
        raise PolicyConfigError(parameter, f"unknown rule {value!r}; valid: {', '.join(sorted(choices))}")
    return choices[value]
