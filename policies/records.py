"""Records named by the specification, plus the plan a policy hands to the controller.

The names and fields of :class:`RiskAssessment`, :class:`MirrorSnapshot` and
:class:`MigrationSchedule` follow the specification exactly so that reports, logs and the live
controller speak the same vocabulary. In the twin a snapshot's images are sizes in bytes, not bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """What the Predictive Analytics Engine says about one instance at one instant.

    Attributes:
        instance_id: The instance assessed.
        risk_score: Probability-like score in [0, 1]; the workflow compares it with its threshold.
        predicted_load: Forecast CPU utilisation of the instance's host (fraction, may exceed 1).
        health_metrics: Named health readings that informed the score (e.g. ``memory_errors``).
    """

    instance_id: str
    risk_score: float
    predicted_load: float
    health_metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MirrorSnapshot:
    """A restorable point-in-time mirror of one instance, held by a Mirror Store.

    Attributes:
        instance_id: The instance mirrored.
        timestamp: Time (s) at which the snapshot's state was captured.
        memory_image: Size in bytes of the memory image the chain restores (twin) or its manifest
            digest size (live).
        process_list: Processes captured with the state.
        file_list: Files captured with the state.
        ivn: The IVN whose Mirror Store holds it.
        chain_length: Number of deltas on top of the base needed to restore it.
        snapshot_id: The store's id of the snapshot (live), so a restore fetches exactly the snapshot
            the workflow chose even if a newer one lands meanwhile; empty in the twin.
    """

    instance_id: str
    timestamp: float
    memory_image: int
    process_list: Sequence[str] = ()
    file_list: Sequence[str] = ()
    ivn: str = ""
    chain_length: int = 0
    snapshot_id: str = ""


@dataclass(frozen=True, slots=True)
class MigrationSchedule:
    """A migration the controller has committed to, with its a-priori duration estimate.

    Attributes:
        instance_id: The instance to move.
        target_ivn: The IVN it moves into.
        start_time: When the migration starts (s).
        estimated_duration: Estimated wall time of the migration (s), compared with the outcome later.
    """

    instance_id: str
    target_ivn: str
    start_time: float
    estimated_duration: float


class MoveReason(enum.StrEnum):
    """Why a policy asks for a move; kept in the results so reports can group migrations."""

    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    FAILURE_RISK = "failure_risk"
    REBALANCE = "rebalance"


@dataclass(frozen=True, slots=True)
class Move:
    """One instance relocation proposed by a policy.

    Attributes:
        instance_id: The instance to move.
        target_ivn: The IVN that should run it afterwards.
        target_host: A host id inside ``target_ivn``, or ``None`` to let the provider choose.
        reason: Why the policy wants it moved.
        risk: The assessment behind the decision, when the policy has one.
        source_ivn: The IVN the instance runs in now, when the policy knows it. The controller uses
            it to tell a same-IVN live migration from a cross-IVN workflow without an O(instances)
            lookup; ``None`` makes the controller look it up in the fleet view.
    """

    instance_id: str
    target_ivn: str
    target_host: str | None
    reason: MoveReason = MoveReason.OVERLOAD
    risk: RiskAssessment | None = None
    source_ivn: str | None = None


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """Everything a policy decided at one control tick; the controller carries it out.

    Attributes:
        moves: Relocations, in the order the policy wants them started.
        snapshot_intervals_s: Per-instance snapshot interval changes for the RMAs.
        assessments: The risk assessments computed this tick (for reporting), by instance id.
    """

    moves: Sequence[Move] = ()
    snapshot_intervals_s: Mapping[str, float] = field(default_factory=dict)
    assessments: Mapping[str, RiskAssessment] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> MigrationPlan:
        """Return a plan that changes nothing."""
        return cls()


class MigrationOutcome(enum.StrEnum):
    """The four outcomes of the specification's ``initiateMigration``."""

    LOW_RISK = "Low Risk"
    INSUFFICIENT_CAPACITY = "Insufficient Capacity"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "Failed, rolled back"


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """How one run of the migration workflow (``initiateMigration``) ended, for reports and logs.

    Attributes:
        instance_id: The instance the workflow was asked to move.
        target_ivn: The IVN it was asked to move into.
        outcome: Which of the specification's four outcomes happened.
        schedule: The committed schedule, or ``None`` when the workflow stopped before committing
            (low risk, no capacity).
        replacement_id: The replacement instance, or ``None`` when none was created.
        start_time: When the workflow started (s).
        end_time: When it finished (s); ``end_time - start_time`` is compared with the estimate.
        reason: Human-readable explanation of the outcome (why it stopped or rolled back).
        move_reason: Why the policy asked for the move (a :class:`MoveReason` value), when known.
    """

    instance_id: str
    target_ivn: str
    outcome: MigrationOutcome
    schedule: MigrationSchedule | None
    replacement_id: str | None
    start_time: float
    end_time: float
    reason: str = ""
    move_reason: str = ""

    @property
    def duration_s(self) -> float:
        """Wall time the workflow took (s)."""
        return self.end_time - self.start_time
