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
ones. That chain of dependent placements (and the undo of failed evacuations) runs in the compiled
kernels of :mod:`policies.placement_kernels`; this class validates parameters, computes the
instance-selection key, and turns the kernel's move rows into :class:`~policies.records.Move` s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from policies import placement_kernels
from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.instance_selection import INSTANCE_SELECTIONS, InstanceSelection
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment
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
        hosts, instances, rows = placement_kernels.fleet_arrays(fleet)
        key = np.array(self._selection.sort_key(fleet, np.arange(fleet.n_instances)), dtype=np.float64)
        n_moves = placement_kernels.threshold_round(
            hosts,
            instances,
            key,
            self.threshold,
            placement_kernels.NO_UNDERLOAD if self.underload_threshold is None else self.underload_threshold,
            self.allow_cross_ivn,
            self._target.kernel_id,
            rows,
        )
        if n_moves == 0:
            return MigrationPlan.empty()
        moves = [
            _move(fleet, inst, source, target, util, _REASONS[reason])
            for inst, source, target, reason, util in zip(
                rows.instance[:n_moves].tolist(),
                rows.source[:n_moves].tolist(),
                rows.target[:n_moves].tolist(),
                rows.reason[:n_moves].tolist(),
                rows.source_util[:n_moves].tolist(),
                strict=True,
            )
        ]
        assessments = {move.instance_id: move.risk for move in moves if move.risk is not None}
        return MigrationPlan(moves=tuple(moves), assessments=assessments)


_REASONS = {placement_kernels.OVERLOAD: MoveReason.OVERLOAD, placement_kernels.UNDERLOAD: MoveReason.UNDERLOAD}


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
