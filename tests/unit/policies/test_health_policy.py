"""Predictive migration on health signals: evacuate a host whose readings stand out, to the mirror."""

from __future__ import annotations

import numpy as np
import pytest

from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.health_policy import HealthEvacuationPolicy
from policies.records import MoveReason
from policies.registry import make_policy

POWER = np.tile(np.linspace(100.0, 200.0, 11), (4, 1))


def _fleet(health=None, mirror_ivn=None, host_available=None) -> FleetSnapshot:
    # hosts 0-2 in ivn-a, host 3 in ivn-b; instances 0,1 on host 0, 2 on host 1, 3 on host 2
    return FleetSnapshot(
        now_s=600.0,
        ivn_names=("ivn-a", "ivn-b"),
        host_ids=("ivn-a/h0", "ivn-a/h1", "ivn-a/h2", "ivn-b/h0"),
        host_ivn=np.array([0, 0, 0, 1]),
        host_cpu_capacity_mips=np.full(4, 4000.0),
        host_pe_mips=np.full(4, 2000.0),
        host_ram_bytes=np.full(4, 8e9),
        host_power_w=POWER,
        host_available=np.ones(4, dtype=bool) if host_available is None else host_available,
        instance_ids=("vm-0", "vm-1", "vm-2", "vm-3"),
        instance_host=np.array([0, 0, 1, 2]),
        instance_cpu_capacity_mips=np.full(4, 1000.0),
        instance_cpu_request_mips=np.full(4, 500.0),
        instance_ram_bytes=np.full(4, 1e9),
        instance_in_migration=np.zeros(4, dtype=bool),
        instance_cpu_history=np.full((4, 3), 0.5),
        host_health=health,
        instance_mirror_ivn=mirror_ivn,
    )


def test_no_health_readings_no_moves():
    assert HealthEvacuationPolicy().decide(_fleet()).moves == ()


def test_a_host_far_above_the_fleet_median_is_emptied_onto_the_mirror_ivn():
    health = {"memory_errors": np.array([30.0, 1.0, 2.0, 1.5]), "disk_io_errors": np.array([1.0, 1.0, 1.0, 1.0])}
    plan = HealthEvacuationPolicy(ratio=8.0).decide(_fleet(health, mirror_ivn=np.array([1, 1, 1, -1])))
    assert [(m.instance_id, m.target_ivn, m.target_host) for m in plan.moves] == [
        ("vm-0", "ivn-b", None),
        ("vm-1", "ivn-b", None),
    ]
    assert all(m.reason is MoveReason.FAILURE_RISK and m.risk.risk_score == 1.0 for m in plan.moves)
    assert plan.assessments["vm-0"].health_metrics == {"memory_errors": 30.0, "disk_io_errors": 1.0}


def test_the_ratio_is_to_the_median_whatever_the_absolute_level():
    base = np.array([5.0, 1.0, 1.0, 1.0])
    p = HealthEvacuationPolicy(ratio=8.0)
    assert p.decide(_fleet({"m": base})).moves == ()  # 5x the median: not yet
    assert p.decide(_fleet({"m": base * 1000.0})).moves == ()  # the same ratio at any absolute level
    assert len(p.decide(_fleet({"m": np.array([9.0, 1.0, 1.0, 1.0])})).moves) == 2  # 9x: evacuate


def test_without_a_mirror_the_other_ivn_with_most_spare_cpu_is_chosen():
    health = {"m": np.array([1.0, 1.0, 50.0, 1.0])}
    plan = HealthEvacuationPolicy().decide(_fleet(health))
    assert [(m.instance_id, m.target_ivn) for m in plan.moves] == [("vm-3", "ivn-b")]


def test_failed_hosts_do_not_count_and_are_not_evacuated():
    health = {"m": np.array([np.nan, 1.0, 1.0, 1.0])}
    avail = np.array([False, True, True, True])
    assert HealthEvacuationPolicy().decide(_fleet(health, host_available=avail)).moves == ()


def test_a_base_policy_keeps_managing_load_and_health_moves_come_first():
    policy = make_policy("health-evacuate", {"ratio": 8.0, "base": "threshold", "base_params": {"threshold": 0.2}})
    health = {"m": np.array([20.0, 1.0, 1.0, 1.0])}
    plan = policy.decide(_fleet(health, mirror_ivn=np.array([1, 1, 1, -1])))
    first = [m.instance_id for m in plan.moves[:2]]
    assert first == ["vm-0", "vm-1"]
    assert all(m.target_host not in {"ivn-a/h0"} for m in plan.moves)  # nothing onto the failing host
    assert len({m.instance_id for m in plan.moves}) == len(plan.moves)


@pytest.mark.parametrize("ratio", [1.0, 0.5, "high", float("nan"), True])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(PolicyConfigError, match="ratio"):
        HealthEvacuationPolicy(ratio=ratio)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A failure classifier trained on tiny synthetic drives (failing ones carry sector errors)."""
    import pandas as pd

    from policies.failure_prediction import FailureRiskModel

    rng = np.random.default_rng(0)
    n = 400
    failed = rng.random(n) < 0.15
    data = pd.DataFrame(
        {
            "reallocated_sectors": np.where(failed, rng.integers(20, 500, n), 0),
            "pending_sectors": np.where(failed & (rng.random(n) < 0.5), rng.integers(1, 50, n), 0),
            "crc_errors": rng.integers(0, 2, n),
        }
    )
    model = FailureRiskModel.fit(data, failed.astype(np.int64), rng=np.random.default_rng(1))
    return model.save(tmp_path_factory.mktemp("model") / "failure-model.joblib"), model


def test_with_a_classifier_the_score_is_the_predicted_failure_probability(saved_model):
    path, model = saved_model
    smart = {
        "reallocated_sectors": np.array([400.0, 0.0, 0.0, 0.0]),
        "pending_sectors": np.array([30.0, 0.0, 0.0, 0.0]),
        "crc_errors": np.array([0.0, 1.0, 0.0, 0.0]),
        "power_on_hours": np.full(4, 9000.0),
    }
    policy = HealthEvacuationPolicy(model=str(path))
    fleet = _fleet(smart, mirror_ivn=np.array([1, 1, 1, -1]))
    score = policy.scores(fleet)
    assert score[0] >= model.threshold > score[1]
    plan = policy.decide(fleet)
    assert [m.instance_id for m in plan.moves] == ["vm-0", "vm-1"]
    assert plan.moves[0].risk.risk_score == pytest.approx(score[0])
    # a stricter probability than any host reaches: no move; a host that is down reports NaN: score 0
    assert HealthEvacuationPolicy(model=str(path), probability=min(1.0, score[0] + 1e-6)).decide(fleet).moves == ()
    down = {k: np.where(np.arange(4) == 0, np.nan, v) for k, v in smart.items()}
    assert HealthEvacuationPolicy(model=str(path)).scores(_fleet(down))[0] == 0.0


def test_classifier_parameter_errors_name_the_field(saved_model, tmp_path):
    path, _ = saved_model
    with pytest.raises(PolicyConfigError, match="model"):
        HealthEvacuationPolicy(model=str(tmp_path / "missing.joblib"))
    with pytest.raises(PolicyConfigError, match="probability"):
        HealthEvacuationPolicy(probability=0.5)  # without a model
    with pytest.raises(PolicyConfigError, match="probability"):
        HealthEvacuationPolicy(model=str(path), probability=1.5)
    with pytest.raises(PolicyConfigError, match="needs readings"):
        HealthEvacuationPolicy(model=str(path)).decide(_fleet({"memory_errors": np.ones(4)}))


def _three_ivns(cost, mirror=-1, spare_c=4000.0) -> FleetSnapshot:
    # vm-0 (4 GB, 500 MIPS) on ivn-a/h0, whose memory errors stand out; one host each in ivn-b, ivn-c
    return FleetSnapshot(
        now_s=600.0,
        ivn_names=("ivn-a", "ivn-b", "ivn-c"),
        host_ids=("ivn-a/h0", "ivn-a/h1", "ivn-b/h0", "ivn-c/h0"),
        host_ivn=np.array([0, 0, 1, 2]),
        host_cpu_capacity_mips=np.array([4000.0, 4000.0, 4000.0, spare_c]),
        host_pe_mips=np.full(4, 2000.0),
        host_ram_bytes=np.full(4, 8e9),
        host_power_w=POWER,
        host_available=np.ones(4, dtype=bool),
        instance_ids=("vm-0",),
        instance_host=np.array([0]),
        instance_cpu_capacity_mips=np.array([1000.0]),
        instance_cpu_request_mips=np.array([500.0]),
        instance_ram_bytes=np.array([4e9]),
        instance_in_migration=np.zeros(1, dtype=bool),
        instance_cpu_history=np.full((1, 3), 0.5),
        host_health={"memory_errors": np.array([50.0, 1.0, 1.0, 1.0])},
        instance_mirror_ivn=np.array([mirror]),
        ivn_cost_per_gb_hour=np.asarray(cost, dtype=np.float64),
    )


def _target(fleet: FleetSnapshot, **params) -> str:
    [move] = HealthEvacuationPolicy(**params).decide(fleet).moves
    return move.target_ivn


def test_the_target_ivn_minimises_expected_cost_subject_to_capacity():
    assert _target(_three_ivns([0.0, 0.05, 0.01])) == "ivn-c"  # cheaper to host
    # the mirror in ivn-b saves shipping 4 GB: worth it once shipping costs more than the hosting gap
    assert _target(_three_ivns([0.0, 0.05, 0.01], mirror=1)) == "ivn-c"  # shipping free by default
    assert _target(_three_ivns([0.0, 0.05, 0.01], mirror=1), transfer_cost_per_gb=1.0) == "ivn-b"
    assert _target(_three_ivns([0.0, 0.05, 0.01]), stay_h=0.0) == "ivn-b"  # all free: most spare CPU, first
    # no room in the cheap IVN (its only host is smaller than the instance's demand): the next one
    assert _target(_three_ivns([0.0, 0.05, 0.01], spare_c=100.0)) == "ivn-b"
    # equal prices: the mirror's IVN
    assert _target(_three_ivns([0.0, 0.01, 0.01], mirror=2)) == "ivn-c"
    with pytest.raises(PolicyConfigError, match="stay_h"):
        HealthEvacuationPolicy(stay_h=-1.0)
