"""Predictive migration on health signals: empty a host before it fails, onto its instances' mirrors.

Hardware that is about to fail usually says so first: corrected memory errors and disk I/O errors
climb for hours before the crash (the Backblaze SMART data behind issue 5 shows the same for disks).
This policy reads those per-host readings from the fleet view and, when a host's readings stand far
above the fleet's typical host, moves every instance off it — to the IVN that holds the instance's
freshest mirror, so the migration workflow restores from the mirror and ships only what changed
since the snapshot.

"Far above typical" is a ratio to the fleet median of each metric (robust: most hosts are healthy,
so the median is the healthy level whatever its absolute value), so the rule carries no constant fitted
to one failure model. The issue-5 failure classifier replaces this score with a calibrated probability;
the migration side stays the same.

Optionally a ``base`` policy (e.g. ``threshold``) keeps managing load; the health moves are added to
its plan, and take precedence for instances both want to move.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.ports import Policy
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment

if TYPE_CHECKING:
    from policies.failure_prediction import FailureRiskModel

_FLOOR = 1e-9


class HealthEvacuationPolicy:
    """Move instances off hosts whose health readings are ``ratio`` times the fleet's median.

    Args:
        ratio: How many times the fleet median a host's reading of any metric must reach to be
            evacuated (> 1).
        base: Name of a registered policy that keeps managing load (``None``: health moves only).
        base_params: Parameters of ``base``.
        model: Path of a failure classifier saved by ``mirrortwin failure-model``
            (:class:`policies.failure_prediction.FailureRiskModel`). With it a host's score is its
            predicted probability of failure from its readings (the SMART features the model was
            trained on), and ``ratio`` is not used.
        probability: With ``model``: the probability at which a host is evacuated (default: the
            threshold chosen when the model was trained).
        stay_h: Hours an evacuated instance is expected to stay in its new IVN (prices its hosting).
        transfer_cost_per_gb: Price of shipping one GB of state between IVNs.

    Raises:
        PolicyConfigError: ``ratio`` not a number above 1, a bad ``base``, a ``model`` that cannot be
            loaded, or a ``probability`` outside (0, 1].
    """

    name = "health-evacuate"

    def __init__(
        self,
        ratio: float = 8.0,
        base: str | None = None,
        base_params: dict[str, Any] | None = None,
        model: str | None = None,
        probability: float | None = None,
        stay_h: float = 24.0,
        transfer_cost_per_gb: float = 0.0,
    ):
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not math.isfinite(ratio) or ratio <= 1:
            raise PolicyConfigError("ratio", f"must be a number above 1, got {ratio!r}")
        self.ratio = float(ratio)
        self.model: FailureRiskModel | None = None
        if model is not None:
            from policies.failure_prediction import FailureModelError, FailureRiskModel

            try:
                self.model = FailureRiskModel.load(Path(model))
            except (FailureModelError, OSError) as exc:
                raise PolicyConfigError("model", str(exc)) from None
        if probability is not None:
            bad = isinstance(probability, bool) or not isinstance(probability, int | float)
            if bad or not 0 < probability <= 1:
                raise PolicyConfigError("probability", f"must be a number in (0, 1], got {probability!r}")
            if self.model is None:
                raise PolicyConfigError("probability", "only applies with a failure classifier (model)")
        for field, value in (("stay_h", stay_h), ("transfer_cost_per_gb", transfer_cost_per_gb)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise PolicyConfigError(field, f"must be a number >= 0, got {value!r}")
        self.stay_h = float(stay_h)
        self.transfer_cost_per_gb = float(transfer_cost_per_gb)
        self.probability = (
            float(probability) if probability is not None else (self.model.threshold if self.model else math.nan)
        )
        self.base: Policy | None = None
        if base is not None:
            from policies.registry import make_policy  # the registry imports this module

            if base == self.name:
                raise PolicyConfigError("base", "cannot be health-evacuate itself")
            self.base = make_policy(base, base_params or {}, location="controller.params.base_params")

    def scores(self, fleet: FleetSnapshot) -> np.ndarray:
        """Per host, the largest ratio of a reading to that metric's fleet median (0 without readings).

        With a classifier: the host's predicted probability of failure (0 for a host that reports
        nothing: it is down).
        """
        out = np.zeros(fleet.n_hosts)
        if not fleet.host_health:
            return out
        if self.model is not None:
            health = fleet.host_health
            missing = [f for f in self.model.features if f not in health]
            if missing:
                raise PolicyConfigError(
                    "model",
                    f"the failure model needs readings {', '.join(missing)}; the fleet reports "
                    f'{", ".join(health)} (set failures.health_model = "smart")',
                )
            table = np.column_stack([np.asarray(health[f], dtype=np.float64) for f in self.model.features])
            ok = fleet.host_available & np.isfinite(table).all(axis=1)
            if ok.any():
                out[ok] = self.model.predict_proba(pd.DataFrame(table[ok], columns=list(self.model.features)))
            return out
        live = fleet.host_available
        for values in fleet.host_health.values():
            v = np.asarray(values, dtype=np.float64)
            ok = live & np.isfinite(v)
            if ok.sum() < 2:
                continue
            typical = max(float(np.median(v[ok])), _FLOOR)
            out = np.maximum(out, np.where(ok, v / typical, 0.0))
        return out

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Evacuate hosts whose health readings stand out; add the base policy's moves for the rest."""
        score = self.scores(fleet)
        cut = self.probability if self.model is not None else self.ratio
        risky = np.flatnonzero((score >= cut) & fleet.host_available)
        moves: list[Move] = []
        assessments: dict[str, RiskAssessment] = {}
        if risky.size:
            targets = self._target_ivns(fleet, risky)
            health = fleet.host_health or {}
            for i in np.flatnonzero(np.isin(fleet.instance_host, risky) & ~fleet.instance_in_migration).tolist():
                h = int(fleet.instance_host[i])
                target = int(targets[i])
                if target < 0:
                    continue
                risk = RiskAssessment(
                    fleet.instance_ids[i],
                    risk_score=float(score[h]) if self.model is not None else 1.0,
                    predicted_load=math.nan,
                    health_metrics={name: float(values[h]) for name, values in health.items()},
                )
                assessments[risk.instance_id] = risk
                moves.append(
                    Move(
                        fleet.instance_ids[i],
                        fleet.ivn_names[target],
                        None,
                        reason=MoveReason.FAILURE_RISK,
                        risk=risk,
                        source_ivn=fleet.ivn_names[int(fleet.host_ivn[h])],
                    )
                )
        if self.base is None:
            return MigrationPlan(moves=tuple(moves), assessments=assessments)
        base = self.base.decide(fleet)
        moving = {m.instance_id for m in moves}
        evacuating = {fleet.host_ids[h] for h in risky.tolist()}
        rest = [m for m in base.moves if m.instance_id not in moving and m.target_host not in evacuating]
        return MigrationPlan(
            moves=(*moves, *rest),
            snapshot_intervals_s=base.snapshot_intervals_s,
            assessments={**base.assessments, **assessments},
        )

    def _target_ivns(self, fleet: FleetSnapshot, risky: np.ndarray) -> np.ndarray:
        """Per instance on a risky host, the IVN to move it to: the cheapest expected cost with room.

        Candidates are the other IVNs the instance may run in (evacuation inside one IVN is left to
        the load policy, since any host there may share the failing host's fate: rack, power). The
        expected cost of IVN ``j`` is hosting the instance's memory there for ``stay_h`` hours
        (``ivn_cost_per_gb_hour``) plus shipping its state at ``transfer_cost_per_gb`` — nothing to
        ship where its mirror already is (the store restores it; only a small delta crosses). IVNs
        whose spare CPU cannot take the instance are passed over while one can; ties go to the
        mirror's IVN, then to the most spare CPU. ``-1`` where no other IVN is allowed.
        """
        n_ivn = len(fleet.ivn_names)
        spare = np.zeros(n_ivn)
        live = fleet.host_available.copy()
        live[risky] = False
        load = fleet.host_request_mips()
        np.add.at(spare, fleet.host_ivn[live], (fleet.host_cpu_capacity_mips - load)[live])
        host_ivn = np.where(fleet.instance_host >= 0, fleet.host_ivn[np.maximum(fleet.instance_host, 0)], -1)
        price = fleet.ivn_cost_per_gb_hour if fleet.ivn_cost_per_gb_hour is not None else np.zeros(n_ivn)
        mirror = fleet.instance_mirror_ivn
        out = np.full(fleet.n_instances, -1, dtype=np.int64)
        for i in np.flatnonzero(np.isin(fleet.instance_host, risky)).tolist():
            allowed = fleet.instance_allowed_ivns[i] if fleet.instance_allowed_ivns is not None else None
            others = [j for j in range(n_ivn) if j != host_ivn[i] and (allowed is None or allowed[j])]
            if not others:
                continue
            gb = float(fleet.instance_ram_bytes[i]) / 1e9
            need = float(fleet.instance_cpu_request_mips[i])
            mirrored_in = int(mirror[i]) if mirror is not None else -1

            def key(j: int, gb: float = gb, need: float = need, mirrored_in: int = mirrored_in) -> tuple:
                ship = 0.0 if j == mirrored_in else gb
                cost = gb * float(price[j]) * self.stay_h + ship * self.transfer_cost_per_gb
                return (spare[j] < need, cost, j != mirrored_in, -spare[j])

            best = min(others, key=key)
            out[i] = best
            spare[best] -= need
        return out
