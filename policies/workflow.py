"""The specification's ``initiateMigration``, written once for both worlds.

The workflow is a generator: it asks ports to act and *yields* wait commands
(:class:`~policies.waiting.Delay`, :class:`~policies.waiting.Until`) instead of sleeping, so the SimPy
driver runs it in simulated time and the live driver in wall-clock time, unchanged. It never touches
time or I/O itself; every effect goes through :class:`MigrationPorts`.

Steps (and the outcome each exit yields):

1. risk below ``risk_threshold`` → ``LOW_RISK``;
2. target IVN without capacity → ``INSUFFICIENT_CAPACITY``;
3. take the latest mirror snapshot in the target IVN and commit a :class:`MigrationSchedule`;
4. restore a replacement from it (a failed restore → ``ROLLED_BACK``, nothing left running);
5. shift traffic progressively, dwelling and health-checking the replacement at each step
   (unhealthy → LB rollback, replacement decommissioned, ``ROLLED_BACK``: the source keeps serving);
6. redirect fully, decommission the source → ``SUCCEEDED``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from policies.ports import Clock, InstanceProvider, LoadBalancer, MirrorStore
from policies.records import MigrationOutcome, MigrationResult, MigrationSchedule, RiskAssessment
from policies.waiting import Delay, Until, Workflow

DEFAULT_TRAFFIC_STEPS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class MigrationPorts:
    """The ports one migration needs, bundled so the signature stays short and fakes are easy to pass.

    Attributes:
        clock: Source of the times written into the schedule and the result.
        provider: Creates the replacement and decommissions the loser.
        store: Supplies the latest mirror snapshot to restore from.
        lb: Shifts traffic and checks the replacement's health.
    """

    clock: Clock
    provider: InstanceProvider
    store: MirrorStore
    lb: LoadBalancer


@dataclass(frozen=True, slots=True)
class WorkflowSettings:
    """Knobs of the migration workflow.

    Attributes:
        risk_threshold: Minimum ``risk_score`` worth a migration; below it the workflow does nothing,
            because a cross-IVN move costs traffic and a restore.
        traffic_steps: Fractions of traffic sent to the replacement, strictly increasing, ending at 1.
            Small first steps limit the blast radius of a bad replacement.
        dwell_s: Time each step runs before its health check, so problems have time to show.
    """

    risk_threshold: float = 0.5
    traffic_steps: Sequence[float] = DEFAULT_TRAFFIC_STEPS
    dwell_s: float = 30.0

    def __post_init__(self) -> None:
        """Reject settings that would make the workflow meaningless, naming the field."""
        if not 0.0 <= self.risk_threshold <= 1.0:
            raise ValueError(f"risk_threshold: must be in [0, 1], got {self.risk_threshold!r}")
        if not math.isfinite(self.dwell_s) or self.dwell_s < 0:
            raise ValueError(f"dwell_s: must be a finite number >= 0, got {self.dwell_s!r}")
        steps = tuple(float(w) for w in self.traffic_steps)
        if not steps or steps[-1] != 1.0:
            raise ValueError(f"traffic_steps: must end at 1.0, got {steps!r}")
        if any(not 0.0 < w <= 1.0 for w in steps) or any(a >= b for a, b in itertools.pairwise(steps)):
            raise ValueError(f"traffic_steps: must be strictly increasing in (0, 1], got {steps!r}")
        object.__setattr__(self, "traffic_steps", steps)


def initiate_migration(
    instance_id: str,
    target_ivn: str,
    *,
    risk: RiskAssessment,
    ports: MigrationPorts,
    settings: WorkflowSettings,
    target_host: str | None = None,
) -> Workflow[MigrationResult]:
    """Move ``instance_id`` into ``target_ivn`` via a mirror-snapshot restore and a progressive cut-over.

    Args:
        instance_id: The instance to move; it keeps serving until the final redirect.
        target_ivn: The IVN that should run it afterwards.
        risk: The assessment that motivated the move; a low score stops the workflow at once.
        ports: Clock, provider, mirror store and load balancer to act through.
        settings: Risk threshold, traffic steps and dwell time.
        target_host: Host inside ``target_ivn`` chosen by the policy, or ``None`` for the provider's.

    Yields:
        Wait commands for the driver.

    Returns:
        The :class:`MigrationResult`; the workflow never raises for an operational failure, because a
        failed migration is an outcome to report, not a crash of the controller.
    """
    clock, provider, lb = ports.clock, ports.provider, ports.lb
    start = clock.now()

    def finish(
        outcome: MigrationOutcome,
        reason: str,
        schedule: MigrationSchedule | None = None,
        replacement: str | None = None,
    ) -> MigrationResult:
        return MigrationResult(instance_id, target_ivn, outcome, schedule, replacement, start, clock.now(), reason)

    if risk.risk_score < settings.risk_threshold:
        return finish(
            MigrationOutcome.LOW_RISK,
            f"risk {risk.risk_score:.3f} below threshold {settings.risk_threshold:.3f}",
        )
    if not provider.has_capacity(target_ivn, instance_id):
        return finish(MigrationOutcome.INSUFFICIENT_CAPACITY, f"IVN {target_ivn} has no capacity")

    snapshot = ports.store.latest_snapshot(instance_id, target_ivn)
    schedule = MigrationSchedule(
        instance_id,
        target_ivn,
        start_time=clock.now(),
        estimated_duration=provider.estimate_migration_s(instance_id, target_ivn),
    )
    creation = provider.create_from_snapshot(instance_id, snapshot, target_ivn, target_host)
    try:
        yield Until(creation)
        replacement: str = creation.result()
    except Exception as exc:  # a failed restore is an outcome, whatever the adapter raised
        return finish(MigrationOutcome.ROLLED_BACK, f"creating the replacement failed: {exc}", schedule)

    for weight in settings.traffic_steps:
        lb.set_weights(instance_id, {instance_id: 1.0 - weight, replacement: weight})
        yield Delay(settings.dwell_s)
        check = lb.check_health(replacement)
        try:
            yield Until(check)
            healthy = bool(check.result())
            failure = "health check failed"
        except Exception as exc:  # a health check that errors is a failed health check
            healthy = False
            failure = f"health check errored: {exc}"
        if not healthy:
            lb.rollback(instance_id, replacement)
            reason = f"{failure} at traffic weight {weight:g}"
            reason += yield from _decommission(provider, replacement)
            return finish(MigrationOutcome.ROLLED_BACK, reason, schedule, replacement)

    lb.redirect(instance_id, replacement)
    reason = "replacement healthy at full traffic"
    reason += yield from _decommission(provider, instance_id)
    return finish(MigrationOutcome.SUCCEEDED, reason, schedule, replacement)


def _decommission(provider: InstanceProvider, instance_id: str) -> Workflow[str]:
    """Decommission ``instance_id`` and return text to append to the reason if that failed.

    Why a helper: both exits decommission something, and a failed decommission must not turn an
    already-decided outcome into a crash; it is reported so operators can clean up.
    """
    operation = provider.decommission(instance_id)
    try:
        yield Until(operation)
        operation.result()
    except Exception as exc:
        return f"; decommissioning {instance_id} failed: {exc}"
    return ""
