"""The Automated Migration Controller (AMC): ask the policy, then carry its plan out through ports.

Policies decide, the controller acts. Each tick it takes one fleet view from telemetry, asks the
policy for a :class:`~policies.records.MigrationPlan`, and executes it:

* snapshot-interval changes go to the Mirror Store;
* moves inside the instance's own IVN go to the provider as **one** ``live_migrate`` batch, because
  there can be tens of thousands a day and the twin executes a batch vectorised;
* moves into another IVN each get their own migration workflow
  (:func:`~policies.workflow.initiate_migration`), spawned concurrently, since each one restores from
  a mirror snapshot, shifts traffic and may roll back.

The controller is a workflow itself (it yields :mod:`policies.waiting` commands), so the same object
runs in the twin and live. Its work per tick is O(moves): it never walks the whole fleet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from policies.fleet import FleetSnapshot
from policies.ports import Clock, InstanceProvider, LoadBalancer, MirrorStore, Policy, Telemetry
from policies.records import MigrationPlan, MigrationResult, Move, RiskAssessment
from policies.waiting import Delay, Spawn, Workflow
from policies.workflow import MigrationPorts, WorkflowSettings, initiate_migration


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """Knobs of the controller loop.

    Attributes:
        interval_s: Time between control ticks (CloudSim's consolidation rounds run every 300 s).
        history_len: Utilisation samples per instance requested from telemetry for the policy.
        workflow: Settings for every cross-IVN migration workflow the controller starts.
    """

    interval_s: float = 300.0
    history_len: int = 30
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)

    def __post_init__(self) -> None:
        """Reject settings that would stall or spin the loop, naming the field."""
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"interval_s: must be a finite number > 0, got {self.interval_s!r}")
        if isinstance(self.history_len, bool) or not isinstance(self.history_len, int) or self.history_len < 1:
            raise ValueError(f"history_len: must be an integer >= 1, got {self.history_len!r}")


@dataclass(frozen=True, slots=True)
class TickSummary:
    """What one control tick did, for reports (one row per tick).

    Attributes:
        time: When the tick ran (s).
        live_migrations: Same-IVN moves handed to the provider in one batch.
        cross_ivn_migrations: Migration workflows spawned.
        skipped: Moves ignored because a workflow for that instance was still running.
        snapshot_changes: Snapshot-interval changes applied.
    """

    time: float
    live_migrations: int
    cross_ivn_migrations: int
    skipped: int
    snapshot_changes: int


class MigrationController:
    """Run a policy against a fleet through ports, tick after tick.

    Args:
        policy: Decides the moves; the controller never second-guesses it beyond skipping instances
            whose cross-IVN workflow is still running.
        telemetry: Source of the fleet view.
        provider: Executes live migrations and creates/decommissions instances for workflows.
        store: Receives snapshot-interval changes and serves snapshots to workflows.
        lb: Shifts traffic for workflows.
        clock: Time for tick summaries and workflows.
        settings: Interval, history length and workflow settings.

    Attributes:
        results: Every finished cross-IVN workflow's result, in completion order.
        ticks: One :class:`TickSummary` per tick.
        live_migration_count: Total same-IVN moves handed to the provider.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        telemetry: Telemetry,
        provider: InstanceProvider,
        store: MirrorStore,
        lb: LoadBalancer,
        clock: Clock,
        settings: ControllerSettings,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self._telemetry = telemetry
        self._provider = provider
        self._store = store
        self._clock = clock
        self._ports = MigrationPorts(clock=clock, provider=provider, store=store, lb=lb)
        self._in_flight: set[str] = set()
        self.results: list[MigrationResult] = []
        self.ticks: list[TickSummary] = []
        self.live_migration_count = 0

    @property
    def in_flight(self) -> frozenset[str]:
        """Instances whose cross-IVN workflow has started and not yet finished."""
        return frozenset(self._in_flight)

    def run(self) -> Workflow[None]:
        """Tick forever, ``settings.interval_s`` apart; the driver decides when to stop."""
        while True:
            yield from self.tick()
            yield Delay(self.settings.interval_s)

    def tick(self) -> Workflow[None]:
        """Observe, decide and act once; yields one ``Spawn`` per cross-IVN move."""
        fleet = self._telemetry.fleet(self.settings.history_len)
        plan = self.policy.decide(fleet)
        for instance_id, interval_s in plan.snapshot_intervals_s.items():
            self._store.set_snapshot_interval(instance_id, interval_s)

        local: list[Move] = []
        remote: list[Move] = []
        skipped = 0
        source_ivn = _SourceIvnLookup(fleet)
        for move in plan.moves:
            if move.instance_id in self._in_flight:
                skipped += 1
                continue
            current = move.source_ivn if move.source_ivn is not None else source_ivn(move.instance_id)
            (local if move.target_ivn == current else remote).append(move)

        if local:
            self._provider.live_migrate(local)
            self.live_migration_count += len(local)
        self.ticks.append(
            TickSummary(self._clock.now(), len(local), len(remote), skipped, len(plan.snapshot_intervals_s))
        )
        for move in remote:
            self._in_flight.add(move.instance_id)
            yield Spawn(self._migrate(move, _risk_of(move, plan)))

    def _migrate(self, move: Move, risk: RiskAssessment) -> Workflow[None]:
        """Run one workflow and record its result, whatever the outcome."""
        try:
            result = yield from initiate_migration(
                move.instance_id,
                move.target_ivn,
                risk=risk,
                ports=self._ports,
                settings=self.settings.workflow,
                target_host=move.target_host,
            )
            self.results.append(dataclasses.replace(result, move_reason=str(move.reason)))
        finally:
            self._in_flight.discard(move.instance_id)


def _risk_of(move: Move, plan: MigrationPlan) -> RiskAssessment:
    """The assessment behind a move: its own, else the plan's, else certainty.

    A policy that asks for a move without an assessment has decided already; certainty (1.0) lets
    the workflow's low-risk gate through rather than silently dropping the policy's decision.
    """
    if move.risk is not None:
        return move.risk
    assessed = plan.assessments.get(move.instance_id)
    if assessed is not None:
        return assessed
    return RiskAssessment(move.instance_id, risk_score=1.0, predicted_load=math.nan, health_metrics={})


class _SourceIvnLookup:
    """Current IVN of an instance, for moves that do not carry ``source_ivn``.

    Built lazily on first use, so a plan whose moves all carry ``source_ivn`` costs nothing per
    instance of the fleet.
    """

    def __init__(self, fleet: FleetSnapshot) -> None:
        self._fleet = fleet
        self._index: dict[str, int] | None = None

    def __call__(self, instance_id: str) -> str:
        if self._index is None:
            self._index = {iid: i for i, iid in enumerate(self._fleet.instance_ids)}
        position = self._index.get(instance_id)
        if position is None:
            raise ValueError(f"policy moved unknown instance {instance_id!r} (not in its fleet view)")
        host = int(self._fleet.instance_host[position])
        if host < 0:
            raise ValueError(f"policy moved instance {instance_id!r}, which is not placed on any host")
        return self._fleet.ivn_names[int(self._fleet.host_ivn[host])]
