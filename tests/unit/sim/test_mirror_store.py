"""Mirror Store chains: retention never breaks a restore chain, compaction bounds it, capacity holds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.mirror_store import SnapshotChains, _pairwise_sum


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


class _ArrayChains(SnapshotChains):
    """The array formulation the compiled kernel replaced, kept as the reference it must match bit for bit."""

    def append(self, members, captured_s, sizes, full, full_bytes):
        members = np.asarray(members, dtype=np.int64)
        first = full | (self.count[members] == self.start[members])
        compact = ~first & (self.chain_len[members] + 1 >= self.max_chain)
        need = np.where(first, sizes, np.where(compact, full_bytes, sizes))
        accepted = np.zeros(members.size, dtype=np.bool_)
        stores = self.store_of[members]
        for s in np.unique(stores).tolist():
            where = np.flatnonzero(stores == s)
            accepted[where] = np.cumsum(need[where]) <= self.capacity[s] - self.used[s] + 1e-6
        m, need, first, compact = members[accepted], need[accepted], first[accepted], compact[accepted]
        self.refused[members[~accepted]] += 1
        self.refused_bytes += float(sizes[~accepted].sum())
        if m.size:
            pos = self.count[m] % self.ring
            self.time[m, pos] = captured_s
            self.nbytes[m, pos] = need
            is_base = first | compact
            prev_base = self.base_of[m, (self.count[m] - 1) % self.ring]
            self.base_of[m, pos] = np.where(is_base, self.count[m], prev_base)
            self.chain_len[m] = np.where(is_base, 0, self.chain_len[m] + 1)
            self.count[m] += 1
            np.add.at(self.held, m, need)
            np.add.at(self.used, self.store_of[m], need)
            np.maximum(self.peak_used, self.used, out=self.peak_used)
            self._retain(m, captured_s)
        return accepted

    def _retain(self, members, now):
        count, start = self.count[members], self.start[members]
        span = np.arange(self.ring)
        absolute = start[:, None] + span[None, :]
        valid = absolute < count[:, None]
        pos = absolute % self.ring
        times = np.where(valid, self.time[members[:, None], pos], np.nan)
        young = valid & (times >= now - self.max_age_s)
        first_young = np.where(young.any(axis=1), start + np.argmax(young, axis=1), count - 1)
        oldest_kept = np.minimum(np.maximum(count - self.retention_count, first_young), count - 1)
        new_start = self.base_of[members, oldest_kept % self.ring]
        drop = valid & (absolute < new_start[:, None])
        freed = (self.nbytes[members[:, None], pos] * drop).sum(axis=1)
        self.held[members] -= freed
        np.subtract.at(self.used, self.store_of[members], freed)
        self.start[members] = np.maximum(start, new_start)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    retention=st.sampled_from([1, 3, 12, 130]),
    max_chain=st.sampled_from([1, 4, 8]),
    max_age=st.floats(50.0, 5000.0),
    capacity=st.floats(100.0, 1e5),
    seed=st.integers(0, 2**31),
    steps=st.integers(1, 250),
)
def test_compiled_append_matches_the_array_formulation_bit_for_bit(
    n, retention, max_chain, max_age, capacity, seed, steps
):
    # Rings of 5 to 139 entries cover numpy's plain, 8-way and halving summation orders.
    rng = np.random.default_rng(seed)
    store_of = rng.integers(0, 3, n)
    kwargs = {"retention_count": retention, "retention_max_age_s": max_age, "max_chain_length": max_chain}
    fast = SnapshotChains(n, store_of, np.full(3, capacity), **kwargs)
    ref = _ArrayChains(n, store_of, np.full(3, capacity), **kwargs)
    full_bytes = rng.uniform(10.0, 400.0, n)
    now = 0.0
    for _ in range(steps):
        now += float(rng.uniform(1.0, 300.0))
        members = np.flatnonzero(rng.random(n) < 0.6)
        rng.shuffle(members)
        full = rng.random(members.size) < 0.05
        sizes = np.where(full, full_bytes[members], rng.uniform(0.0, 1.0, members.size) * rng.uniform(1.0, 1e4))
        a = fast.append(members, now, sizes, full, full_bytes[members])
        b = ref.append(members, now, sizes, full, full_bytes[members])
        assert a.tolist() == b.tolist()
    for name in ("time", "nbytes", "base_of", "count", "start", "chain_len", "held", "used", "peak_used", "refused"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    assert fast.refused_bytes == ref.refused_bytes


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 21, 127, 128, 129, 300, 1000, 5003])
def test_pairwise_sum_adds_in_numpys_order(n):
    rng = np.random.default_rng(n)
    a = rng.random(n) * 10.0 ** rng.integers(0, 15, n)
    assert _pairwise_sum(a, 0, n) == a.sum()
    rows = a[: n - n % 3].reshape(-1, 3)
    assert [_pairwise_sum(r, 0, 3) for r in rows] == rows.sum(axis=1).tolist()
