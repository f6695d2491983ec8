"""Migration strategies: the round-by-round simulation against the closed form, and the choice rule."""

from __future__ import annotations

import pytest
import simpy

from sim.migration_physics import plan_pre_copy
from sim.network import SharedNetwork
from sim.strategies import (
    RESUME_S,
    CopyOutcome,
    choose_strategy,
    estimate_cold,
    estimate_mirror_restore,
    estimate_pre_copy,
    simulate_copy,
)

#: A working set so large that dirtying never saturates: U(W, D, t) = D * t, the closed form's model.
HUGE_W = 1e16


def _simulate(
    kinds_and_bytes: list[tuple[str, float]],
    *,
    rate_Bps: float,
    dirty_Bps: float,
    working_set: float = HUGE_W,
    max_downtime_s: float = 0.3,
    max_rounds: int = 30,
    restore_s: float = 0.0,
    shared: bool = False,
) -> list[tuple[CopyOutcome, float, float]]:
    """Run migrations from t = 0; returns (outcome, pause time, end time) of each.

    Each migration gets its own pair of links (source egress, destination ingress) unless ``shared``,
    when all leave through link 0.
    """
    env = simpy.Environment()
    n = len(kinds_and_bytes)
    net = SharedNetwork(env, [rate_Bps * 8.0] * (2 * n + 1), [f"l{k}" for k in range(2 * n + 1)])
    results: list[tuple[CopyOutcome, float, float]] = []
    paused: dict[int, float] = {}

    def one(k: int, kind: str, nbytes: float):  # type: ignore[no-untyped-def]
        links = [0 if shared else 2 * k, 2 * k + 1]
        out = yield env.process(
            simulate_copy(
                env,
                net,
                links,
                kind,  # type: ignore[arg-type]
                first_bytes=nbytes,
                nominal_Bps=rate_Bps,
                dirty_Bps=lambda: dirty_Bps,
                working_set_bytes=working_set,
                max_downtime_s=max_downtime_s,
                max_rounds=max_rounds,
                pause=lambda: paused.setdefault(k, env.now),
                first_round_wait=env.timeout(restore_s) if kind == "mirror_restore" else None,
            )
        )
        results.append((out, paused.get(k, float("nan")), env.now))

    for k, (kind, nbytes) in enumerate(kinds_and_bytes):
        env.process(one(k, kind, nbytes))
    env.run()
    return results


@pytest.mark.parametrize(
    ("M", "R", "D"),
    [(4e9, 125e6, 20e6), (1.74e9, 62.5e6, 5e6), (8e9, 1.25e9, 600e6), (2e9, 1e8, 9e7)],
)
def test_simulated_pre_copy_matches_closed_form(M, R, D):
    plan = plan_pre_copy(M, R, D, max_downtime_s=0.3, max_rounds=30, resume_s=RESUME_S)
    [(out, paused_at, end)] = _simulate([("precopy", M)], rate_Bps=R, dirty_Bps=D)
    assert out.rounds == plan.rounds and out.converged == plan.converged
    assert end == pytest.approx(plan.duration_s, rel=0.01)
    assert out.duration_s == pytest.approx(plan.duration_s, rel=0.01)
    assert out.bytes_total == pytest.approx(plan.bytes_total, rel=0.01)
    assert out.downtime_s == pytest.approx(plan.downtime_s, rel=0.01)
    # down only during the stop-and-copy
    assert end - paused_at + RESUME_S == pytest.approx(out.downtime_s)
    # the estimate runs the same recurrence at the uncontended rate
    est = estimate_pre_copy(M, R, D, HUGE_W, max_downtime_s=0.3, max_rounds=30)
    assert est.bytes_total == pytest.approx(out.bytes_total, rel=1e-6)
    assert est.downtime_s == pytest.approx(out.downtime_s, rel=1e-6)


def test_non_converging_pre_copy_hits_the_round_limit_with_a_long_downtime():
    M, R, D = 1e9, 1e8, 2e8  # D >= R: every round is longer than the one before
    plan = plan_pre_copy(M, R, D, max_rounds=5)
    [(out, _, end)] = _simulate([("precopy", M)], rate_Bps=R, dirty_Bps=D, max_rounds=5)
    assert out.rounds == 5 and not out.converged
    assert out.bytes_total == pytest.approx(plan.bytes_total, rel=0.01)
    assert end == pytest.approx(plan.duration_s, rel=0.01)
    assert out.downtime_s == pytest.approx(M * 2**5 / R + RESUME_S, rel=0.01)  # 320 s stopped


def test_saturating_working_set_caps_each_round():
    # W = 0.5 GB dirtied at 1 GB/s over R = 0.1 GB/s: rounds send at most W, never converge
    [(out, _, _)] = _simulate([("precopy", 2e9)], rate_Bps=1e8, dirty_Bps=1e9, working_set=5e8, max_rounds=4)
    assert not out.converged and out.rounds == 4
    assert out.bytes_total < 2e9 + 4 * 5e8


def test_cold_copy_downtime_is_the_whole_transfer_plus_resume():
    M, R = 3e9, 125e6
    [(out, paused_at, end)] = _simulate([("cold", M)], rate_Bps=R, dirty_Bps=50e6)
    assert paused_at == 0.0
    assert out.bytes_total == M and out.rounds == 0
    assert out.downtime_s == pytest.approx(M / R + RESUME_S, rel=1e-9)
    assert end == pytest.approx(M / R, rel=1e-9)
    assert estimate_cold(M, R) == out


def test_mirror_restore_of_an_idle_instance_moves_nothing_after_the_snapshot():
    # idle (dirty rate 0) right after its snapshot completed: the delta since the snapshot is empty
    restore_s = 870e6 / 1e9
    [(out, _, end)] = _simulate([("mirror_restore", 0.0)], rate_Bps=125e6, dirty_Bps=0.0, restore_s=restore_s)
    assert out.bytes_total == pytest.approx(0.0, abs=1.0)
    assert out.downtime_s == pytest.approx(RESUME_S, abs=1e-6)
    assert end == pytest.approx(restore_s)  # bounded by the store restore, not the network
    est = estimate_mirror_restore(0.0, restore_s, 125e6, 0.0, 2e8, max_downtime_s=0.3, max_rounds=30)
    assert est.bytes_total == 0.0 and est.downtime_s == pytest.approx(RESUME_S)


def test_mirror_restore_catches_up_what_was_dirtied_during_the_restore():
    R, D, restore_s = 125e6, 10e6, 4.0
    [(out, _, _end)] = _simulate([("mirror_restore", 50e6)], rate_Bps=R, dirty_Bps=D, restore_s=restore_s)
    # round 0 lasts the restore (4 s > 0.4 s of delta); round 1 ships the 40 MB dirtied meanwhile
    assert out.bytes_total == pytest.approx(50e6 + D * restore_s + D * (D * restore_s / R), rel=1e-3)
    assert out.rounds == 2 and out.converged
    assert out.downtime_s < 0.3 + RESUME_S


def test_auto_picks_mirror_restore_with_a_fresh_snapshot_and_precopy_otherwise():
    M, R, D, W = 4e9, 125e6, 20e6, 1e9
    target = 0.3 + RESUME_S
    precopy = estimate_pre_copy(M, R, D, W, max_downtime_s=0.3, max_rounds=30)
    cold = estimate_cold(M, R)
    mirror = estimate_mirror_restore(50e6, M / 1e9, R, D, W, max_downtime_s=0.3, max_rounds=30)
    assert choose_strategy([precopy, cold, mirror], target).kind == "mirror_restore"
    assert choose_strategy([precopy, cold], target).kind == "precopy"
    assert mirror.bytes_total < 0.1 * precopy.bytes_total


def test_choice_rule_downtime_first_then_bytes():
    def o(kind: str, nbytes: float, down: float) -> CopyOutcome:
        return CopyOutcome(kind, nbytes, 1.0, down, 1, True)  # type: ignore[arg-type]

    # nobody meets the target: the lowest downtime wins whatever its bytes
    assert choose_strategy([o("precopy", 9e9, 2.0), o("cold", 1e9, 8.0)], 0.32).kind == "precopy"
    # both meet it: fewer bytes wins
    assert choose_strategy([o("precopy", 9e9, 0.05), o("mirror_restore", 1e8, 0.25)], 0.32).kind == "mirror_restore"
    # equal downtime and bytes: mirror_restore > precopy > cold
    assert choose_strategy([o("cold", 1e9, 0.02), o("precopy", 1e9, 0.02)]).kind == "precopy"
    with pytest.raises(ValueError):
        choose_strategy([])


def test_two_migrations_sharing_a_link_each_take_twice_as_long():
    M, R = 2e9, 125e6
    [(alone, _, t_alone)] = _simulate([("precopy", M)], rate_Bps=R, dirty_Bps=0.0)
    both = _simulate([("precopy", M), ("precopy", M)], rate_Bps=R, dirty_Bps=0.0, shared=True)
    for out, _, end in both:
        assert end == pytest.approx(2 * t_alone, rel=0.01)
        assert out.bytes_total == pytest.approx(alone.bytes_total)


def test_contention_stretches_rounds_and_so_the_dirty_sets():
    M, R, D = 2e9, 125e6, 20e6
    [(alone, _, t_alone)] = _simulate([("precopy", M)], rate_Bps=R, dirty_Bps=D)
    both = _simulate([("precopy", M), ("precopy", M)], rate_Bps=R, dirty_Bps=D, shared=True)
    for out, _, end in both:
        assert end > 2 * t_alone
        assert out.bytes_total > alone.bytes_total


def test_summary_compares_estimate_with_outcome_per_strategy():
    import pandas as pd

    from sim.runner import migration_strategy_summary

    frame = pd.DataFrame(
        {
            "kind": ["precopy", "precopy", "mirror_restore"],
            "start_s": [0.0, 0.0, 10.0],
            "end_s": [10.0, 30.0, 12.0],
            "estimated_duration_s": [10.0, 20.0, 1.0],
            "downtime_s": [0.1, 0.2, 0.02],
            "estimated_downtime_s": [0.1, 0.1, 0.02],
            "converged": [True, False, True],
        }
    )
    s = migration_strategy_summary(frame)
    assert s["migration_strategies"] == {"mirror_restore": 1, "precopy": 2}
    assert s["migration_estimate_error_mean"] == pytest.approx({"precopy": 0.25, "mirror_restore": 1.0})
    assert s["migration_downtime_error_mean"] == pytest.approx({"precopy": 0.5, "mirror_restore": 0.0})
    assert s["migrations_not_converged"] == 1
