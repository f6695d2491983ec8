"""The migration workflow's four outcomes, asserted as whole event logs against the fakes."""

from __future__ import annotations

import pytest

from policies.records import MigrationOutcome, MigrationSchedule, MirrorSnapshot, RiskAssessment
from policies.workflow import WorkflowSettings, initiate_migration
from tests.fakes.fake_world import FakeWorld, make_world

SRC = "web-1"
NEW = "web-1@ivn-b"
SNAPSHOT = MirrorSnapshot(SRC, timestamp=-30.0, memory_image=2**30, ivn="ivn-b")
SETTINGS = WorkflowSettings(risk_threshold=0.5, traffic_steps=(0.1, 0.25, 0.5, 1.0), dwell_s=30.0)
RISKY = RiskAssessment(SRC, risk_score=0.9, predicted_load=0.95)


def migrate(world: FakeWorld, risk: RiskAssessment = RISKY, target_host: str | None = None):
    workflow = initiate_migration(
        SRC, "ivn-b", risk=risk, ports=world.ports, settings=SETTINGS, target_host=target_host
    )
    return world.runner.run_to_completion(workflow)


PREPARE = [
    ("provider.has_capacity ivn-b web-1", 0.0),
    ("store.latest_snapshot web-1 ivn-b", 0.0),
    ("provider.estimate_migration_s web-1 ivn-b", 0.0),
    ("provider.create_from_snapshot web-1 ivn-b", 0.0),
    ("create done", 20.0),
]


def shift_step(weight_src: str, weight_new: str, at: float) -> list[tuple[str, float]]:
    return [
        (f"lb.set_weights web-1 web-1={weight_src} web-1@ivn-b={weight_new}", at),
        ("delay 30", at),
        ("lb.check_health web-1@ivn-b", at + 30),
        ("health done", at + 35),
    ]


def test_succeeds_through_every_traffic_step_then_decommissions_the_source() -> None:
    world = make_world(running=[SRC], snapshots={(SRC, "ivn-b"): SNAPSHOT})

    result = migrate(world, target_host="b-7")

    assert world.log.entries == [
        *PREPARE,
        *shift_step("0.9", "0.1", 20.0),
        *shift_step("0.75", "0.25", 55.0),
        *shift_step("0.5", "0.5", 90.0),
        *shift_step("0", "1", 125.0),
        ("lb.redirect web-1 web-1@ivn-b", 160.0),
        ("provider.decommission web-1", 160.0),
        ("decommission web-1 done", 165.0),
    ]
    assert [w for _, w in world.lb.weights_history] == [
        {SRC: 0.9, NEW: 0.1},
        {SRC: 0.75, NEW: 0.25},
        {SRC: 0.5, NEW: 0.5},
        {SRC: 0.0, NEW: 1.0},
    ]
    assert result.outcome is MigrationOutcome.SUCCEEDED
    assert result.schedule == MigrationSchedule(SRC, "ivn-b", start_time=0.0, estimated_duration=60.0)
    assert (result.replacement_id, result.start_time, result.end_time) == (NEW, 0.0, 165.0)
    assert world.provider.restores == [(SRC, SNAPSHOT, "ivn-b", "b-7")]
    assert world.provider.running == {NEW}
    assert world.lb.serving(SRC) == {NEW}


def test_unhealthy_replacement_rolls_back_and_source_keeps_serving() -> None:
    world = make_world(running=[SRC], health={NEW: [True, False]})

    result = migrate(world)

    assert world.log.entries == [
        *PREPARE,
        *shift_step("0.9", "0.1", 20.0),
        *shift_step("0.75", "0.25", 55.0),
        ("lb.rollback web-1 web-1@ivn-b", 90.0),
        ("provider.decommission web-1@ivn-b", 90.0),
        ("decommission web-1@ivn-b done", 95.0),
    ]
    assert result.outcome is MigrationOutcome.ROLLED_BACK
    assert result.replacement_id == NEW
    assert "health check failed at traffic weight 0.25" in result.reason
    assert world.lb.serving(SRC) == {SRC}
    assert world.provider.running == {SRC}
    assert world.provider.decommissioned == [NEW]


def test_health_check_that_errors_counts_as_unhealthy() -> None:
    world = make_world(running=[SRC], health_error=ConnectionError("probe timed out"))

    result = migrate(world)

    assert result.outcome is MigrationOutcome.ROLLED_BACK
    assert "probe timed out" in result.reason
    assert world.lb.serving(SRC) == {SRC}
    assert world.provider.running == {SRC}


def test_failing_restore_rolls_back_with_nothing_left_running() -> None:
    world = make_world(running=[SRC], create_error=RuntimeError("snapshot chain corrupt"))

    result = migrate(world)

    assert world.log.entries == PREPARE
    assert result.outcome is MigrationOutcome.ROLLED_BACK
    assert result.replacement_id is None
    assert result.schedule is not None
    assert result.end_time == 20.0
    assert "snapshot chain corrupt" in result.reason
    assert world.provider.running == {SRC}
    assert world.lb.weights_history == []
    assert world.lb.serving(SRC) == {SRC}


def test_low_risk_does_nothing() -> None:
    world = make_world(running=[SRC])

    result = migrate(world, risk=RiskAssessment(SRC, risk_score=0.2, predicted_load=0.3))

    assert world.log.entries == []
    assert result.outcome is MigrationOutcome.LOW_RISK
    assert result.schedule is None
    assert result.replacement_id is None
    assert world.provider.running == {SRC}


def test_insufficient_capacity_stops_before_committing() -> None:
    world = make_world(running=[SRC], capacity={"ivn-b": False})

    result = migrate(world)

    assert world.log.entries == [("provider.has_capacity ivn-b web-1", 0.0)]
    assert result.outcome is MigrationOutcome.INSUFFICIENT_CAPACITY
    assert result.schedule is None
    assert world.provider.running == {SRC}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"risk_threshold": 1.5}, "risk_threshold"),
        ({"dwell_s": -1.0}, "dwell_s"),
        ({"traffic_steps": (0.5, 0.25, 1.0)}, "traffic_steps"),
        ({"traffic_steps": (0.1, 0.5)}, "traffic_steps"),
        ({"traffic_steps": ()}, "traffic_steps"),
    ],
)
def test_settings_reject_nonsense_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        WorkflowSettings(**kwargs)
