import math

import numpy as np
import pytest

from sim.migration_physics import plan_pre_copy, unique_dirty_bytes, unique_dirty_bytes_array


def closed_form(M, R, D, v_th, n_max, t_res):
    lam = D / R
    n = min(math.ceil(math.log(v_th / M) / math.log(lam)), n_max)
    v_mig = M * (1 - lam ** (n + 1)) / (1 - lam)
    return n, v_mig, v_mig / R, M * lam**n / R + t_res


@pytest.mark.parametrize(
    ("M", "R", "D"),
    [(4e9, 125e6, 20e6), (1.74e9, 62.5e6, 5e6), (8e9, 1.25e9, 600e6), (2e9, 1e8, 9e7)],
)
def test_pre_copy_matches_closed_form(M, R, D):
    plan = plan_pre_copy(M, R, D, max_downtime_s=0.3, max_rounds=30, resume_s=0.02)
    n, v_mig, t_mig, t_down = closed_form(M, R, D, 0.3 * R, 30, 0.02)
    assert plan.rounds == n
    assert plan.bytes_total == pytest.approx(v_mig, rel=1e-12)
    assert plan.duration_s == pytest.approx(t_mig, rel=1e-12)
    assert plan.downtime_s == pytest.approx(t_down, rel=1e-12)


def test_non_converging_migration_stops_at_round_limit():
    plan = plan_pre_copy(1e9, 1e8, 2e8, max_rounds=5)
    assert not plan.converged and plan.rounds == 5
    assert plan.last_round_bytes == pytest.approx(1e9 * 2**5)


def test_idle_instance_is_a_single_copy():
    plan = plan_pre_copy(1e9, 1e8, 0.0)
    assert plan.bytes_total == 1e9 and plan.downtime_s == pytest.approx(0.02)


def test_unique_dirty_bytes_saturates_at_working_set():
    w = 1e9
    assert unique_dirty_bytes(w, 1e6, 1.0) == pytest.approx(1e6, rel=1e-3)
    assert unique_dirty_bytes(w, 1e8, 1e4) == pytest.approx(w, rel=1e-6)
    assert unique_dirty_bytes(w, 0.0, 100.0) == 0.0


@pytest.mark.parametrize("empty", [False, True])
def test_unique_dirty_bytes_array_matches_the_masked_and_scalar_forms(empty):
    rng = np.random.default_rng(7)
    w = rng.uniform(1e8, 4e9, 50)
    if empty:
        w[::7] = 0.0  # instances with no writable working set dirty nothing
    d = rng.uniform(0.0, 2e8, 50)
    tau = rng.uniform(-10.0, 600.0, 50)
    got = unique_dirty_bytes_array(w, d, tau)
    masked = np.where(w > 0, w * -np.expm1(-d * np.maximum(tau, 0.0) / np.where(w > 0, w, 1.0)), 0.0)
    assert got.tolist() == masked.tolist()  # the unmasked fast path changes no bit
    assert got == pytest.approx([unique_dirty_bytes(*args) for args in zip(w, d, tau, strict=True)], rel=1e-12)
