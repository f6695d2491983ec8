"""The Resource Mirroring Agents' helpers: per-pair batching and the one-instance dirty rate."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.mirror_store import SnapshotChains
from sim.mirroring import SimMirroring, _transfer_groups


def _groups_by_dict(src: np.ndarray, dst: np.ndarray) -> list[tuple[int, int, list[int]]]:
    """The per-instance loop ``_capture`` used before it was vectorised: the order it must keep."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for pos, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        groups[(a, b)].append(pos)
    return [(a, b, positions) for (a, b), positions in groups.items()]


_FEW_IVNS = st.tuples(st.integers(0, 4), st.integers(0, 4))  # 16-bit keys, radix-sorted
_ODD_IVNS = st.tuples(st.integers(-2, 400), st.integers(-2, 400))  # too many or negative: lexsort


@settings(max_examples=300, deadline=None)
@given(pairs=st.one_of(st.lists(_FEW_IVNS, max_size=60), st.lists(_ODD_IVNS, max_size=60)))
def test_transfer_groups_keep_the_order_of_first_appearance(pairs):
    src = np.array([a for a, _ in pairs], dtype=np.int64)
    dst = np.array([b for _, b in pairs], dtype=np.int64)
    got = [(a, b, positions.tolist()) for a, b, positions in _transfer_groups(src, dst)]
    assert got == _groups_by_dict(src, dst)
    assert all(isinstance(a, int) and isinstance(b, int) for a, b, _ in got)


def test_transfer_groups_of_one_pair_is_one_batch_of_everything():
    [(a, b, positions)] = _transfer_groups(np.full(5, 2), np.full(5, 3))
    assert (a, b) == (2, 3) and positions.tolist() == [0, 1, 2, 3, 4]


def test_dirty_rate_of_one_instance_equals_the_array_form():
    rng = np.random.default_rng(3)
    mips = np.concatenate([rng.uniform(500.0, 3000.0, 40), [1000.0, 1000.0, 0.0]])
    request = np.concatenate([rng.uniform(0.0, 3500.0, 40), [0.0, 1500.0, 10.0]])  # idle, over-full, no MIPS
    agent = SimpleNamespace(dc=SimpleNamespace(mips=mips, request=request), dirty_full_Bps=123.456e6)
    with np.errstate(divide="ignore", invalid="ignore"):
        array = SimMirroring.dirty_Bps(agent, np.arange(mips.size))
        for i in range(mips.size):
            one = SimMirroring.dirty_Bps(agent, i)
            assert one == array[i]
            assert SimMirroring.dirty_Bps(agent, np.int64(i)) == array[i]
    assert SimMirroring.dirty_Bps(agent, 41) == agent.dirty_full_Bps  # clipped at full load
    assert isinstance(SimMirroring.dirty_Bps(agent, 0), float)


def _agent(capacity: float) -> SimpleNamespace:
    chains = SnapshotChains(
        4, np.zeros(4, dtype=np.int64), np.array([capacity]), retention_count=3, retention_max_age_s=1e9,
        max_chain_length=4,
    )  # fmt: skip
    return SimpleNamespace(
        latest_s=np.full(4, -np.inf),
        last_capture_s=np.full(4, -np.inf),
        snapshots_taken=np.zeros(4, dtype=np.int64),
        uploading=np.zeros(4, dtype=bool),
        refusal_streak=np.zeros(4, dtype=np.int64),
        interval_s=np.full(4, 300.0),
        next_due_s=np.full(4, 320.0),
        env=SimpleNamespace(now=20.0),
        dc=SimpleNamespace(state_bytes=np.full(4, 100.0)),
        reduction=1.0,
        chains=chains,
    )


def test_arrivals_that_all_fit_are_all_stored():
    agent = _agent(1e9)
    members = np.arange(4)
    SimMirroring._arrived(agent, members, np.full(4, 100.0), np.ones(4, dtype=bool), np.full(4, -np.inf), 10.0)
    assert agent.latest_s.tolist() == [10.0] * 4 and agent.snapshots_taken.tolist() == [1] * 4
    assert agent.chains.stored_bytes() == 400.0


def test_stale_unchained_and_refused_arrivals_are_not_stored():
    agent = _agent(305.0)
    members = np.arange(4)
    SimMirroring._arrived(agent, members[:2], np.full(2, 100.0), np.ones(2, dtype=bool), np.full(2, -np.inf), 10.0)
    agent.last_capture_s[:] = 20.0
    # 0: a delta on the stored snapshot; 1: a delta on a parent the store never had;
    # 2: a base that just fits; 3: a base that no longer fits
    SimMirroring._arrived(
        agent,
        members,
        np.array([5.0, 5.0, 100.0, 100.0]),
        np.array([False, False, True, True]),
        np.array([10.0, 15.0, -np.inf, -np.inf]),
        20.0,
    )
    # a snapshot that arrives after a newer one of the same instance is dropped
    SimMirroring._arrived(agent, members[:1], np.array([5.0]), np.array([False]), np.array([10.0]), 15.0)
    assert agent.latest_s.tolist() == [20.0, 10.0, 20.0, -np.inf]
    assert agent.snapshots_taken.tolist() == [2, 1, 1, 0]
    assert agent.chains.refused.tolist() == [0, 1, 0, 1]
    assert agent.chains.stored_bytes() == 305.0
    # the agents of refused snapshots re-base on what the store holds, and back off (2 x the interval)
    assert agent.last_capture_s.tolist() == [20.0, 10.0, 20.0, -np.inf]
    assert agent.refusal_streak.tolist() == [0, 1, 0, 1]
    assert agent.next_due_s.tolist() == [320.0, 620.0, 320.0, 620.0]
