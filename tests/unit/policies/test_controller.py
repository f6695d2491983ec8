"""The controller splits a plan: same-IVN moves in one live-migration batch, cross-IVN moves as workflows."""

from __future__ import annotations

from policies.controller import ControllerSettings, MigrationController, TickSummary
from policies.fleet import FleetSnapshot
from policies.records import MigrationOutcome, MigrationPlan, Move, RiskAssessment
from policies.workflow import WorkflowSettings
from tests.fakes.fake_telemetry import FakeTelemetry
from tests.fakes.fake_world import FakeWorld, make_world
from tests.fakes.fleet_builder import FleetBuilder


class ScriptedPolicy:
    """Returns the same plan every tick, and remembers the fleets it saw."""

    name = "scripted"

    def __init__(self, plan: MigrationPlan) -> None:
        self.plan = plan
        self.seen: list[FleetSnapshot] = []

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        self.seen.append(fleet)
        return self.plan


def two_ivn_fleet() -> FleetSnapshot:
    return (
        FleetBuilder(ivns=("ivn-a", "ivn-b"))
        .host("a1", ivn="ivn-a")
        .host("a2", ivn="ivn-a")
        .host("b1", ivn="ivn-b")
        .instance("i1", "a1", request_mips=100)
        .instance("i2", "a1", request_mips=100)
        .instance("i3", "a1", request_mips=100)
        .instance("i4", "b1", request_mips=100)
        .build()
    )


RISK = RiskAssessment("i2", risk_score=0.9, predicted_load=0.9)
PLAN = MigrationPlan(
    moves=(
        Move("i1", "ivn-a", "a2", source_ivn="ivn-a"),
        Move("i2", "ivn-b", "b1", source_ivn="ivn-a", risk=RISK),
        Move("i3", "ivn-a", "a2"),  # no source_ivn: the controller looks it up in the fleet
        Move("i4", "ivn-a", None),  # no source_ivn, and its IVN (b) differs: cross-IVN
    ),
    snapshot_intervals_s={"i1": 60.0},
)


def controller(world: FakeWorld, plan: MigrationPlan = PLAN, interval_s: float = 300.0):
    telemetry = FakeTelemetry(two_ivn_fleet())
    settings = ControllerSettings(interval_s=interval_s, history_len=1, workflow=WorkflowSettings(dwell_s=10.0))
    amc = MigrationController(
        ScriptedPolicy(plan),
        telemetry=telemetry,
        provider=world.provider,
        store=world.store,
        lb=world.lb,
        clock=world.clock,
        settings=settings,
    )
    return amc, telemetry


def test_tick_batches_local_moves_and_spawns_one_workflow_per_cross_ivn_move() -> None:
    world = make_world(running=["i1", "i2", "i3", "i4"])
    amc, telemetry = controller(world)

    world.runner.run_to_completion(amc.tick())

    assert [[m.instance_id for m in batch] for batch in world.provider.live_batches] == [["i1", "i3"]]
    assert world.log.events()[:4] == [
        "store.set_snapshot_interval i1 60",
        "provider.live_migrate 2",
        "spawn main.1",
        "spawn main.2",
    ]
    assert world.store.intervals == {"i1": 60.0}
    assert telemetry.requests == [1]
    assert amc.live_migration_count == 2
    assert amc.ticks == [TickSummary(0.0, live_migrations=2, cross_ivn_migrations=2, skipped=0, snapshot_changes=1)]
    assert sorted((r.instance_id, r.target_ivn, r.outcome) for r in amc.results) == [
        ("i2", "ivn-b", MigrationOutcome.SUCCEEDED),
        ("i4", "ivn-a", MigrationOutcome.SUCCEEDED),
    ]
    assert [(i, host) for i, _, _, host in world.provider.restores] == [("i2", "b1"), ("i4", None)]
    assert amc.in_flight == frozenset()


def test_run_ticks_every_interval_and_skips_instances_still_migrating() -> None:
    world = make_world(running=["i1", "i2", "i3", "i4"])
    world.provider.create_s = 400.0  # the first workflows outlive the next tick
    amc, telemetry = controller(world, interval_s=300.0)

    world.runner.start(amc.run())
    world.runner.run(until=650.0)

    assert len(telemetry.requests) == 3  # ticks at 0, 300 and 600
    assert [t.time for t in amc.ticks] == [0.0, 300.0, 600.0]
    assert [t.skipped for t in amc.ticks] == [0, 2, 0]
    assert [t.cross_ivn_migrations for t in amc.ticks] == [2, 0, 2]
    assert amc.live_migration_count == 6


def test_empty_plan_does_nothing() -> None:
    world = make_world()
    amc, _ = controller(world, plan=MigrationPlan.empty())

    world.runner.run_to_completion(amc.tick())

    assert world.log.entries == []
    assert amc.ticks == [TickSummary(0.0, 0, 0, 0, 0)]
