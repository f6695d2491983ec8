"""CloudSim 3.0.3's consolidation round on hand-built hosts (reference cloudsim-planetlab.md §1.8-1.10).

Every fleet here is small enough to decide by hand: hosts of 1000 MIPS (one 1000 MIPS PE) with the
HP ML110 G4 SPECpower table, a handful of VMs, THR 0.8 unless a test is about another detector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from policies import cloudsim_round as cr

G4 = np.array([86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0])
WIDTH = 30


def _p(u: float) -> float:
    """The G4 table interpolated independently of the module under test."""
    return float(np.interp(u, np.linspace(0.0, 1.0, 11), G4))


def _round(
    *,
    host_of: list[int],
    req: list[float],
    util_last: list[float],
    ram: list[float] | None = None,
    rank: list[int] | None = None,
    mips: list[float] | None = None,
    in_mig: list[bool] | None = None,
    hist: np.ndarray | None = None,
    hlen: list[int] | None = None,
    total: float = 1000.0,
    pe: float = 1000.0,
    detector: int = cr.THR,
    safety: float = 0.8,
    selection: int = cr.MMT,
    draws: np.ndarray | None = None,
) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    n_v, n_h = len(host_of), len(util_last)
    out = cr.optimize_allocation(
        host_of=np.array(host_of),
        list_rank=np.array(rank if rank is not None else list(range(n_v))),
        request_mips=np.array(req, dtype=float),
        vm_mips=np.array(mips if mips is not None else [1000.0] * n_v),
        ram_mb=np.array(ram if ram is not None else [1000.0] * n_v),
        in_migration=np.array(in_mig if in_mig is not None else [False] * n_v),
        history_newest_first=hist if hist is not None else np.zeros((n_v, WIDTH)),
        history_len=np.array(hlen if hlen is not None else [0] * n_v),
        host_total_mips=np.full(n_h, total),
        host_pe_mips=np.full(n_h, pe),
        host_power_w=np.tile(G4, (n_h, 1)),
        host_util_last=np.array(util_last, dtype=float),
        detector=detector,
        safety=safety,
        selection=selection,
        draws=draws if draws is not None else np.zeros(1),
    )
    vms, src, dst, why, overloaded = out
    moves = list(zip(vms.tolist(), src.tolist(), dst.tolist(), why.tolist(), strict=True))
    return moves, overloaded


# --- spec_power ------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(11))
def test_spec_power_is_the_table_at_every_tenth(k: int) -> None:
    assert cr.spec_power(G4, k / 10) == pytest.approx(G4[k], abs=1e-12)


@pytest.mark.parametrize("u", [0.05, 0.25, 0.33, 0.5, 0.61, 0.875, 0.99, 0.123456])
def test_spec_power_interpolates_linearly_between_tenths(u: float) -> None:
    assert cr.spec_power(G4, u) == pytest.approx(_p(u), rel=1e-12)


def test_spec_power_hand_values_and_clamping() -> None:
    assert cr.spec_power(G4, 0.25) == pytest.approx(94.3, rel=1e-12)  # halfway between 92.6 and 96
    assert cr.spec_power(G4, 0.75) == pytest.approx(110.0, rel=1e-12)
    assert cr.spec_power(G4, 1.5) == 117.0
    assert cr.spec_power(G4, -0.2) == 86.0


# --- _r_squared_qr ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "predictors", "seed"), [(30, 1, 0), (30, 3, 1), (12, 4, 2), (6, 5, 3)])
def test_r_squared_qr_matches_least_squares_with_intercept(rows: int, predictors: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random((rows, predictors))
    y = x @ rng.normal(size=predictors) + 0.3 * rng.normal(size=rows) + 2.0
    a = np.column_stack([np.ones(rows), x])
    beta, *_ = np.linalg.lstsq(a, y, rcond=None)
    expected = 1.0 - np.sum((y - a @ beta) ** 2) / np.sum((y - y.mean()) ** 2)
    ok, r2 = cr._r_squared_qr(y, x)
    assert ok
    assert r2 == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_r_squared_qr_exact_fit_is_one() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((15, 2))
    y = 0.5 + 2.0 * x[:, 0] - 3.0 * x[:, 1]
    ok, r2 = cr._r_squared_qr(y, x)
    assert ok and r2 == pytest.approx(1.0, abs=1e-12)


def test_r_squared_qr_is_not_ok_for_an_all_zero_predictor() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((20, 3))
    x[:, 1] = 0.0
    ok, _ = cr._r_squared_qr(rng.random(20), x)
    assert not ok


# --- THR + MMT + PABFD -----------------------------------------------------------------------------


def test_thr_flags_strictly_above_the_threshold() -> None:
    _, over = _round(host_of=[0, 1], req=[800.0, 801.0], util_last=[0.8, 0.801])
    assert over.tolist() == [False, True]


def test_mmt_takes_the_smallest_ram_first_in_list_order_and_pabfd_scores_against_u_last() -> None:
    # host 0: 900/1000 > 0.8. VMs 0 and 1 tie on RAM (500 MB); VM 1 is earlier in the host's list.
    # Removing one leaves 600/1000, so exactly one VM leaves.
    # VM 1 (300 MIPS) can go to host 1 (200 allocated, last accounted at 0.45) or host 2 (400, 0.4):
    #   against u_last:       host 1: P(0.5) - P(0.45) = 1.25,  host 2: P(0.7) - P(0.4) = 8.5  -> host 1
    #   against current load: host 1: P(0.5) - P(0.2)  = 9.4,   host 2: P(0.7) - P(0.4) = 8.5  -> host 2
    assert _p(0.5) - _p(0.45) < _p(0.7) - _p(0.4) < _p(0.5) - _p(0.2)
    moves, over = _round(
        host_of=[0, 0, 0, 1, 2],
        req=[300.0, 300.0, 300.0, 200.0, 400.0],
        ram=[500.0, 500.0, 1000.0, 100.0, 100.0],
        rank=[2, 1, 0, 3, 4],
        util_last=[0.9, 0.45, 0.4],
    )
    assert over.tolist() == [True, False, False]
    # the under-load step then finds nothing: host 2's VM would overload host 1 (900), and vice versa
    assert moves == [(1, 0, 1, cr.OVERLOAD)]


def test_mmt_tie_follows_list_rank_not_vm_index() -> None:
    moves, _ = _round(
        host_of=[0, 0, 0, 1, 2],
        req=[300.0, 300.0, 300.0, 200.0, 400.0],
        ram=[500.0, 500.0, 1000.0, 100.0, 100.0],
        rank=[1, 2, 0, 3, 4],
        util_last=[0.9, 0.45, 0.4],
    )
    assert moves[0][0] == 0


def test_an_empty_host_skips_the_after_allocation_overload_test() -> None:
    # host 0: 1000/1000 > 0.8; MMT takes VM 0 (900 MIPS, 100 MB). Host 1 is empty: 900/1000 would
    # be overloaded but a host with 0 allocated MIPS is not asked. Host 2 would reach 950: refused.
    moves, _ = _round(
        host_of=[0, 0, 2],
        req=[900.0, 100.0, 50.0],
        ram=[100.0, 2000.0, 100.0],
        util_last=[1.0, 0.0, 0.05],
    )
    assert moves == [(0, 0, 1, cr.OVERLOAD)]


def test_a_host_with_any_allocation_gets_the_after_allocation_test() -> None:
    # same, but host 1 runs a 1 MIPS VM: 901/1000 > 0.8, so no host takes VM 0
    moves, over = _round(
        host_of=[0, 0, 2, 1],
        req=[900.0, 100.0, 50.0, 1.0],
        ram=[100.0, 2000.0, 100.0, 100.0],
        util_last=[1.0, 0.0, 0.05],
    )
    assert over.tolist() == [True, False, False]
    assert moves == []


def test_mmt_keeps_taking_vms_until_the_host_is_no_longer_overloaded() -> None:
    # 1100 MIPS on host 0: 850 after the smallest-RAM VM leaves is still > 800, 600 after the next
    moves, _ = _round(
        host_of=[0, 0, 0, 1],
        req=[250.0, 250.0, 600.0, 10.0],
        ram=[100.0, 200.0, 300.0, 100.0],
        util_last=[1.0, 0.0],
    )
    # PABFD by decreasing MIPS (stable): VM 0 then VM 1, both to host 1 (empty, then 250 + 250 = 500)
    assert [m[0] for m in moves if m[3] == cr.OVERLOAD] == [0, 1]


def test_mu_takes_the_lowest_utilisation() -> None:
    moves, _ = _round(
        host_of=[0, 0, 0],
        req=[400.0, 300.0, 200.0],
        mips=[1000.0, 500.0, 250.0],  # utilisations 0.4, 0.6, 0.8
        util_last=[0.9, 0.0],
        selection=cr.MU,
    )
    assert moves[0][:3] == (0, 0, 1)


def test_a_vm_in_migration_is_never_selected() -> None:
    moves, _ = _round(
        host_of=[0, 0, 0],
        req=[300.0, 300.0, 300.0],
        ram=[100.0, 200.0, 300.0],
        in_mig=[True, False, False],
        util_last=[0.9, 0.0],
    )
    assert moves[0][0] == 1


# --- under-load evacuation -------------------------------------------------------------------------


def test_underload_evacuation_is_all_or_nothing() -> None:
    # host 0 (least loaded) holds VM 0 (300) and VM 1 (200). VM 0 fits on host 1 (400 -> 700) but not
    # host 2 (650 -> 950); VM 1 then fits nowhere (host 1 900, host 2 850): nothing of host 0 moves.
    moves, over = _round(
        host_of=[0, 0, 1, 2],
        req=[300.0, 200.0, 400.0, 650.0],
        util_last=[0.2, 0.4, 0.65],
    )
    assert not over.any()
    assert moves == []


def test_underload_evacuation_moves_the_whole_host_when_everything_fits() -> None:
    # the same with VM 1 at 100: VM 0 -> host 1 (700), then VM 1: host 1 P(0.8)-P(0.4) = 12.5,
    # host 2 P(0.75)-P(0.65) = 3 -> host 2. Both targets then leave the candidate list.
    moves, _ = _round(
        host_of=[0, 0, 1, 2],
        req=[300.0, 100.0, 400.0, 650.0],
        util_last=[0.2, 0.4, 0.65],
    )
    assert moves == [(0, 0, 1, cr.UNDERLOAD), (1, 0, 2, cr.UNDERLOAD)]


def test_underload_candidates_in_order_of_u_last_not_current_load() -> None:
    # host 1 carries less now (100) but host 2 was accounted lower (0.15 < 0.3): host 2 goes first
    moves, _ = _round(
        host_of=[1, 2, 0],
        req=[100.0, 200.0, 500.0],
        util_last=[0.5, 0.3, 0.15],
    )
    assert moves[0][:2] == (1, 2)


def test_duplicate_move_quirk_a_vm_placed_by_the_overload_step_moves_again() -> None:
    # host 0: 900 > 800, MMT takes VM 0 (100 MIPS, 100 MB); 800 left is not > 0.8.
    # PABFD: host 1 P(0.2)-P(0.1) = 3.2 < host 2 P(0.6)-P(0.5) = 4 -> host 1.
    # Under-load: host 1 (u_last 0.1) is still a candidate; its list is VM 2 then VM 0, both fit on
    # host 2 (600, then 700), so VM 0 is planned twice, the second time from its original host.
    moves, over = _round(
        host_of=[0, 0, 1, 2],
        req=[100.0, 800.0, 100.0, 500.0],
        ram=[100.0, 2000.0, 1000.0, 1000.0],
        util_last=[0.9, 0.1, 0.5],
    )
    assert over.tolist() == [True, False, False]
    assert moves == [(0, 0, 1, cr.OVERLOAD), (2, 1, 2, cr.UNDERLOAD), (0, 0, 2, cr.UNDERLOAD)]
    assert [m[0] for m in moves].count(0) == 2


def test_hosts_last_accounted_at_zero_are_neither_evacuated_nor_targets_of_evacuation() -> None:
    # host 1 runs VM 1 but was accounted at 0: it is not evacuated, and host 0 cannot move there
    moves, _ = _round(host_of=[0, 1], req=[100.0, 100.0], util_last=[0.1, 0.0])
    assert moves == []


# --- MC, RS ----------------------------------------------------------------------------------------


def _mc_fleet(hlen: int, seed: int = 7) -> tuple[dict[str, Any], int]:
    """Host 0 with three 300 MIPS VMs (900 > 800, one leaves); VM 2 is a near-linear mix of 0 and 1.

    Returns the round's arguments and the VM with the largest R² against the others, computed here
    with numpy's least squares.
    """
    rng = np.random.default_rng(seed)
    hist = np.zeros((3, WIDTH))
    a, b = rng.random(hlen), rng.random(hlen)
    hist[0, :hlen] = a
    hist[1, :hlen] = b
    hist[2, :hlen] = 0.5 * a + 0.3 * b + 0.01 * rng.normal(size=hlen)
    best, best_r2 = -1, -np.inf
    if hlen >= 3:
        for i in range(3):
            others = [j for j in range(3) if j != i]
            x = np.column_stack([np.ones(hlen), hist[others, :hlen].T])
            y = hist[i, :hlen]
            beta, *_ = np.linalg.lstsq(x, y, rcond=None)
            r2 = 1 - np.sum((y - x @ beta) ** 2) / np.sum((y - y.mean()) ** 2)
            if r2 > best_r2:
                best, best_r2 = i, r2
    args = {
        "host_of": [0, 0, 0],
        "req": [300.0, 300.0, 300.0],
        "ram": [500.0, 100.0, 900.0],  # MMT would take VM 1
        "hist": hist,
        "hlen": [hlen] * 3,
        "util_last": [0.9, 0.0],
        "selection": cr.MC,
    }
    return args, best


def test_mc_takes_the_vm_best_explained_by_the_others() -> None:
    args, best = _mc_fleet(hlen=20)
    assert best == 2
    moves, _ = _round(**args)
    assert moves[0][0] == 2


def test_mc_falls_back_to_mmt_when_history_is_shorter_than_the_vm_count() -> None:
    args, _ = _mc_fleet(hlen=2)
    moves, _ = _round(**args)
    assert moves[0][0] == 1  # the smallest RAM


def test_mc_falls_back_to_mmt_on_an_all_zero_history_column() -> None:
    args, _ = _mc_fleet(hlen=20)
    args["hist"][1, :] = 0.0  # an all-zero predictor when VM 0 is regressed: commons-math throws
    moves, _ = _round(**args)
    assert moves[0][0] == 1  # MMT's pick (smallest RAM), not the first candidate


def test_r_squared_qr_of_a_constant_response_is_not_a_best_fit() -> None:
    x = np.random.default_rng(6).random((20, 2))
    ok, r2 = cr._r_squared_qr(np.full(20, 0.5), x)
    assert ok and not r2 > 0.0  # NaN or -inf, as 0/0 or x/0 in Java


def test_mc_survives_a_vm_with_a_constant_history() -> None:
    args, _ = _mc_fleet(hlen=20)
    args["hist"][0, :20] = 0.5  # VM 0 steady at 50 % for the whole window
    moves, _ = _round(**args)
    assert moves and moves[0][0] != 0  # its R² is NaN/-inf, so MC never prefers it


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0), (0.34, 1), (0.5, 1), (0.7, 2), (0.999, 2)])
def test_rs_takes_floor_draw_times_candidates_in_list_order(draw: float, expected: int) -> None:
    moves, _ = _round(
        host_of=[0, 0, 0],
        req=[300.0, 300.0, 300.0],
        util_last=[0.9, 0.0],
        selection=cr.RS,
        draws=np.array([draw]),
    )
    assert moves[0][0] == expected


def test_rs_is_reproducible_with_the_same_draws() -> None:
    rng = np.random.default_rng(11)
    n_v = 12
    host_of = (np.arange(n_v) % 3).tolist()
    req = np.random.default_rng(12).uniform(150.0, 350.0, n_v).tolist()
    draws = rng.random(n_v + 1)
    kw: dict[str, Any] = {"host_of": host_of, "req": req, "util_last": [0.9, 0.9, 0.9, 0.0], "selection": cr.RS}
    first, _ = _round(**kw, draws=draws.copy())
    second, _ = _round(**kw, draws=draws.copy())
    assert first == second and first
    other, _ = _round(**kw, draws=np.random.default_rng(13).random(n_v + 1))
    assert [m[0] for m in other] != [m[0] for m in first]


# --- statistical detectors and their fallback to THR 0.7 ------------------------------------------


def _one_vm_host(util: float, history: list[float], detector: int, safety: float) -> bool:
    hist = np.zeros((1, WIDTH))
    hist[0, : len(history)] = history
    _, over = _round(
        host_of=[0],
        req=[util * 1000.0],
        util_last=[util, 0.0],
        hist=hist,
        hlen=[len(history)],
        detector=detector,
        safety=safety,
    )
    return bool(over[0])


@pytest.mark.parametrize(("detector", "safety"), [(cr.LR, 1.2), (cr.IQR, 1.5), (cr.MAD, 2.5)])
def test_short_history_falls_back_to_thr_07(detector: int, safety: float) -> None:
    assert _one_vm_host(0.75, [0.1] * 9, detector, safety)
    assert not _one_vm_host(0.65, [0.1] * 9, detector, safety)
    assert not _one_vm_host(0.7, [0.1] * 9, detector, safety)  # strictly above 0.7


def test_lr_needs_ten_points() -> None:
    # a flat 0.1 history predicts 0.1 * 1.2 < 1: not overloaded once LR can run, though 0.75 > 0.7
    assert _one_vm_host(0.75, [0.1] * 9, cr.LR, 1.2)
    assert not _one_vm_host(0.75, [0.1] * 10, cr.LR, 1.2)


def test_lr_predicts_from_the_ten_newest_points() -> None:
    # newest first 0.95, 0.9, ..., 0.5: rising 0.05 per step, the prediction beyond the window is > 1
    # (intercept 0.45 + slope 0.05 * 11) * 1.2 = 1.2 >= 1; falling: (1.0 - 0.55) * 1.2 = 0.54
    rising = [0.95 - 0.05 * i for i in range(10)]
    assert _one_vm_host(0.3, rising, cr.LR, 1.2)
    assert not _one_vm_host(0.3, rising[::-1], cr.LR, 1.2)


@pytest.mark.parametrize(("detector", "safety"), [(cr.IQR, 1.5), (cr.MAD, 2.5)])
def test_iqr_and_mad_need_twelve_points_after_trailing_zeros_are_trimmed(detector: int, safety: float) -> None:
    # flat history: spread 0, threshold 1.0, so 0.75 is fine once the detector runs
    assert _one_vm_host(0.75, [0.1] * 11, detector, safety)
    assert not _one_vm_host(0.75, [0.1] * 12, detector, safety)
    # an oldest zero is trimmed (11 left: fallback); a zero inside the history is not (12: runs)
    assert _one_vm_host(0.75, [0.1] * 11 + [0.0], detector, safety)
    assert not _one_vm_host(0.75, [0.1] * 5 + [0.0] + [0.1] * 6, detector, safety)


def test_iqr_threshold_is_one_minus_safety_times_the_spread() -> None:
    # 12 points 0.1 .. 1.2 / 2: Q1 at round(3.25) - 1 = 2 -> 0.15, Q3 at round(9.75) - 1 = 9 -> 0.5;
    # threshold 1 - 1.5 * 0.35 = 0.475
    history = [0.05 * (i + 1) for i in range(12)]
    assert _one_vm_host(0.48, history, cr.IQR, 1.5)
    assert not _one_vm_host(0.47, history, cr.IQR, 1.5)
