"""Mirror Store chains: retention never breaks a restore chain, compaction bounds it, capacity holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.mirror_store import SnapshotChains


def _check_invariants(c: SnapshotChains, now: float, appended: list[list[tuple[float, float, bool]]]) -> None:
    for i in range(c.n):
        times, sizes, bases = c.held_entries(i)
        absolute = np.arange(c.start[i], c.count[i])
        # every held snapshot's restore chain is held: its base and everything after it
        assert np.all(bases >= c.start[i])
        assert np.all(bases <= absolute)
        # a restore reads fewer than max_chain deltas after its base
        assert np.all(absolute - bases < c.max_chain)
        # what retention keeps is held: the last N that are younger than the age limit, and the latest
        stored = [t for t, _, ok in appended[i] if ok]
        if stored:
            assert times[-1] == stored[-1]
            keep = [t for t in stored[-c.retention_count :] if t >= now - c.max_age_s]
            assert set(keep) <= set(times.tolist())
        assert abs(c.held[i] - sizes.sum()) < 1e-6
    for s in range(len(c.capacity)):
        assert abs(c.used[s] - c.held[c.store_of == s].sum()) < 1e-6
        assert c.used[s] <= c.capacity[s] + 1e-6


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 4),
    retention=st.integers(1, 6),
    max_chain=st.integers(1, 5),
    max_age=st.floats(50.0, 2000.0),
    capacity=st.floats(50.0, 5000.0),
    steps=st.lists(
        st.tuples(st.floats(1.0, 400.0), st.lists(st.floats(0.0, 60.0), min_size=4, max_size=4), st.integers(0, 15)),
        min_size=1,
        max_size=40,
    ),
)
def test_retention_never_deletes_what_a_restore_chain_needs(n, retention, max_chain, max_age, capacity, steps):
    store_of = np.arange(n) % 2
    c = SnapshotChains(
        n,
        store_of,
        np.array([capacity, capacity]),
        retention_count=retention,
        retention_max_age_s=max_age,
        max_chain_length=max_chain,
    )
    full_bytes = np.full(n, 40.0)
    appended: list[list[tuple[float, float, bool]]] = [[] for _ in range(n)]
    now = 0.0
    for dt, sizes, mask in steps:
        now += dt
        members = np.array([i for i in range(n) if mask >> i & 1], dtype=np.int64)
        if members.size == 0:
            continue
        size = np.array(sizes[: members.size])
        full = c.count[members] == c.start[members]
        size = np.where(full, full_bytes[members], size)
        ok = c.append(members, now, size, full, full_bytes[members])
        for m, accepted in zip(members.tolist(), ok.tolist(), strict=True):
            appended[m].append((now, 0.0, accepted))
        _check_invariants(c, now, appended)


def test_compaction_makes_a_new_base_after_max_chain_deltas():
    c = SnapshotChains(
        1, np.array([0]), np.array([1e9]), retention_count=10, retention_max_age_s=1e9, max_chain_length=3
    )
    one = np.array([0])
    c.append(one, 0.0, np.array([100.0]), np.array([True]), np.array([100.0]))
    for t in (1.0, 2.0):
        c.append(one, t, np.array([5.0]), np.array([False]), np.array([100.0]))
    assert c.restore_chain_length(0) == 2
    c.append(one, 3.0, np.array([5.0]), np.array([False]), np.array([100.0]))  # third delta: folded
    assert c.restore_chain_length(0) == 0
    times, sizes, bases = c.held_entries(0)
    assert times.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert sizes.tolist() == [100.0, 5.0, 5.0, 100.0]  # the new base is a full image, built in the store
    assert bases.tolist() == [0, 0, 0, 3]


def test_old_chains_go_once_no_kept_snapshot_needs_them():
    c = SnapshotChains(
        1, np.array([0]), np.array([1e9]), retention_count=2, retention_max_age_s=1e9, max_chain_length=2
    )
    one = np.array([0])
    c.append(one, 0.0, np.array([100.0]), np.array([True]), np.array([100.0]))
    c.append(one, 1.0, np.array([5.0]), np.array([False]), np.array([100.0]))  # delta of base 0
    c.append(one, 2.0, np.array([5.0]), np.array([False]), np.array([100.0]))  # compacted: base 2
    c.append(one, 3.0, np.array([5.0]), np.array([False]), np.array([100.0]))
    times, _, _ = c.held_entries(0)
    assert times.tolist() == [2.0, 3.0]  # the last 2, and their chain starts at the base of t=2
    assert c.held[0] == 105.0 and c.stored_bytes() == 105.0


def test_age_limit_drops_old_snapshots_but_keeps_the_latest():
    c = SnapshotChains(
        1, np.array([0]), np.array([1e9]), retention_count=10, retention_max_age_s=10.0, max_chain_length=1
    )
    one = np.array([0])
    for t in (0.0, 5.0, 100.0):  # max_chain 1: every snapshot is its own base
        c.append(one, t, np.array([10.0]), np.array([t == 0.0]), np.array([10.0]))
    times, _, _ = c.held_entries(0)
    assert times.tolist() == [100.0]


def test_a_full_store_refuses_and_says_so():
    c = SnapshotChains(
        2, np.array([0, 0]), np.array([150.0]), retention_count=5, retention_max_age_s=1e9, max_chain_length=5
    )
    ok = c.append(np.array([0, 1]), 0.0, np.array([100.0, 100.0]), np.array([True, True]), np.array([100.0, 100.0]))
    assert ok.tolist() == [True, False]
    assert c.refused.tolist() == [0, 1] and c.refused_bytes == 100.0
    assert c.used[0] == 100.0
    assert np.isneginf(c.latest_time()[1])
