"""The Resource Mirroring Agents' helpers: per-pair batching and the one-instance dirty rate."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.mirroring import SimMirroring, _transfer_groups


def _groups_by_dict(src: np.ndarray, dst: np.ndarray) -> list[tuple[int, int, list[int]]]:
    """The per-instance loop ``_capture`` used before it was vectorised: the order it must keep."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for pos, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        groups[(a, b)].append(pos)
    return [(a, b, positions) for (a, b), positions in groups.items()]


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=60))
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
