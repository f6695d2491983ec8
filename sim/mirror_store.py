"""What each Mirror Store holds: per-instance snapshot chains under retention, compaction and capacity.

A chain is a base image followed by deltas; restoring the snapshot at position ``j`` needs every
entry from ``j``'s base up to ``j``. The store keeps, for every instance,

* the snapshots its retention keeps: the last ``retention_count`` and, of those, the ones younger
  than ``retention_max_age_s`` — the latest is always kept, so an instance never loses its only
  restore point to age;
* everything a kept snapshot's restore needs: the chain from the oldest kept snapshot's base on.
  Retention therefore never deletes a snapshot a restore chain needs (a hypothesis test checks it);
* compaction: when a chain reaches ``max_chain_length`` deltas, the store folds it into a new base
  image for the newest capture (server-side, nothing crosses the network), so a restore never reads
  more than that many deltas.

A store has a capacity; a snapshot that does not fit is refused (counted), and the agent's next
delta is then taken against the last snapshot the store did accept, so chains never reference a
snapshot the store lacks.

Everything is arrays over instances with a small ring per instance (at most ``retention_count +
max_chain_length + 1`` entries are ever needed), so a batch of thousands of arrivals is a few numpy
operations, which keeps the 20,000-instance scenario fast.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class SnapshotChains:
    """The snapshot chains of ``n`` instances spread over Mirror Stores.

    Args:
        n: Number of instances.
        store_of: Store (IVN index) holding each instance's snapshots.
        store_capacity_bytes: Capacity of each store, indexed like ``store_of``'s values.
        retention_count: Snapshots kept per instance (newest first).
        retention_max_age_s: Kept snapshots are younger than this (the latest is always kept).
        max_chain_length: Deltas after which a chain is compacted into a new base.
    """

    def __init__(
        self,
        n: int,
        store_of: IntArray,
        store_capacity_bytes: FloatArray,
        *,
        retention_count: int,
        retention_max_age_s: float,
        max_chain_length: int,
    ) -> None:
        self.n = n
        self.store_of = np.asarray(store_of, dtype=np.int64)
        self.capacity = np.asarray(store_capacity_bytes, dtype=np.float64)
        self.retention_count = int(retention_count)
        self.max_age_s = float(retention_max_age_s)
        self.max_chain = int(max_chain_length)
        self.ring = self.retention_count + self.max_chain + 1
        self.time = np.full((n, self.ring), np.nan)
        self.nbytes = np.zeros((n, self.ring))
        self.base_of = np.zeros((n, self.ring), dtype=np.int64)  # absolute index of each entry's base
        self.count = np.zeros(n, dtype=np.int64)  # absolute index of the next entry
        self.start = np.zeros(n, dtype=np.int64)  # absolute index of the oldest entry held
        self.chain_len = np.zeros(n, dtype=np.int64)  # deltas since the latest base
        self.held = np.zeros(n)  # bytes held per instance
        self.used = np.zeros(len(self.capacity))  # bytes held per store
        self.refused = np.zeros(n, dtype=np.int64)
        self.refused_bytes = 0.0
        self.peak_used = np.zeros(len(self.capacity))

    # --- queries --------------------------------------------------------------------------------
    def latest_time(self) -> FloatArray:
        """Capture time of each instance's newest held snapshot (-inf when it has none)."""
        has = self.count > self.start
        out = np.full(self.n, -np.inf)
        idx = np.flatnonzero(has)
        out[idx] = self.time[idx, (self.count[idx] - 1) % self.ring]
        return out

    def restore_chain_length(self, i: int) -> int:
        """Deltas a restore of instance ``i``'s latest snapshot reads after its base."""
        return int(self.chain_len[i])

    def held_entries(self, i: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """Times, sizes and base indices (absolute) of instance ``i``'s held snapshots, oldest first."""
        idx = np.arange(self.start[i], self.count[i])
        pos = idx % self.ring
        return self.time[i, pos], self.nbytes[i, pos], self.base_of[i, pos]

    def stored_bytes(self) -> float:
        """Bytes held by all stores."""
        return float(self.used.sum())

    # --- arrivals -------------------------------------------------------------------------------
    def append(
        self, members: IntArray, captured_s: float, sizes: FloatArray, full: BoolArray, full_bytes: FloatArray
    ) -> BoolArray:
        """Store one snapshot per member captured at ``captured_s``; return which were accepted.

        ``members`` are distinct instances (one snapshot each). ``sizes`` are the bytes that arrived
        (a base or a delta); ``full`` marks bases; ``full_bytes`` is what a base image of the instance
        weighs (for compaction). The work — capacity check, insertion, retention — is one compiled
        pass (:func:`_append_kernel`), as a batch arrives on every snapshot transfer.
        """
        members = np.asarray(members, dtype=np.int64)
        if members.size == 0:
            return np.zeros(0, dtype=np.bool_)
        sizes = np.asarray(sizes, dtype=np.float64)
        accepted = _append_kernel(
            members,
            float(captured_s),
            sizes,
            np.asarray(full, dtype=np.bool_),
            np.asarray(full_bytes, dtype=np.float64),
            self.store_of,
            self.capacity,
            self.used,
            self.peak_used,
            self.held,
            self.time,
            self.nbytes,
            self.base_of,
            self.count,
            self.start,
            self.chain_len,
            self.refused,
            self.retention_count,
            self.max_age_s,
            self.max_chain,
        )
        if not accepted.all():
            self.refused_bytes += float(sizes[~accepted].sum())
        return accepted


#: Longest run numpy sums with its 8-way unrolled loop; longer runs are halved first.
_PAIRWISE_BLOCK = 128


@numba.njit(cache=True)  # type: ignore[misc]
def _block_sum(a: FloatArray, lo: int, n: int) -> float:
    """``a[lo:lo + n].sum()`` for ``n <= 128``, in numpy's order: left to right below 8 values, else 8-way."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True)  # type: ignore[misc]
def _pairwise_sum(a: FloatArray, lo: int, n: int) -> float:
    """``a[lo:lo + n].sum()`` added in exactly numpy's pairwise order, so the kernel's results are bit-equal.

    Numpy sums runs of up to 128 values with :func:`_block_sum` and longer runs as the sum of two
    halves (split at a multiple of 8). The halving is walked with an explicit stack rather than by
    recursion: numba's on-disk cache of a recursive function crashes the next process that loads it.
    """
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, lo, n)
    depth = 64  # halving 2**63 values reaches a block long before this
    f_lo = np.empty(depth, dtype=np.int64)
    f_n = np.empty(depth, dtype=np.int64)
    f_left = np.empty(depth)
    f_right_pending = np.zeros(depth, dtype=np.bool_)
    top = 0
    f_lo[0], f_n[0] = lo, n
    value = 0.0
    have_value = False
    while True:
        half = f_n[top] // 2
        half -= half % 8
        if not have_value:  # descend into the left half of the frame on top
            child_lo, child_n = f_lo[top], half
        elif not f_right_pending[top]:  # left half done: keep it, descend into the right half
            f_left[top] = value
            f_right_pending[top] = True
            child_lo, child_n = f_lo[top] + half, f_n[top] - half
        else:  # both halves done: the frame's sum goes to its parent
            value = f_left[top] + value
            top -= 1
            if top < 0:
                return value
            continue
        if child_n <= _PAIRWISE_BLOCK:
            value = _block_sum(a, child_lo, child_n)
            have_value = True
        else:
            top += 1
            f_lo[top], f_n[top] = child_lo, child_n
            f_right_pending[top] = False
            have_value = False


@numba.njit(cache=True)  # type: ignore[misc]
def _append_kernel(
    members: IntArray,
    captured_s: float,
    sizes: FloatArray,
    full: BoolArray,
    full_bytes: FloatArray,
    store_of: IntArray,
    capacity: FloatArray,
    used: FloatArray,
    peak_used: FloatArray,
    held: FloatArray,
    time: FloatArray,
    nbytes: FloatArray,
    base_of: IntArray,
    count: IntArray,
    start: IntArray,
    chain_len: IntArray,
    refused: IntArray,
    retention_count: int,
    max_age_s: float,
    max_chain: int,
) -> BoolArray:
    """Capacity check, insertion and retention of one batch of snapshots, updating the arrays in place.

    Three passes over ``members``, in the same order and with the same float operations as the
    array formulation it replaced (so results are bit-identical):

    1. capacity: per store, the batch's needs are accumulated in member order, and a snapshot is
       accepted while that running total fits the room the store had before the batch (a refused
       snapshot still counts towards the total, as with a cumulative sum);
    2. insertion of the accepted ones (base, delta, or delta compacted into a new base), then the
       stores' peak use;
    3. retention: keep the last ``retention_count`` snapshots that are younger than ``max_age_s``
       (the newest always), plus every entry their restore chains need, and free the rest.
    """
    m = members.shape[0]
    ring = time.shape[1]
    n_stores = capacity.shape[0]
    need = np.empty(m)
    is_base = np.zeros(m, dtype=np.bool_)
    for k in range(m):
        i = members[k]
        first = full[k] or count[i] == start[i]
        compact = (not first) and chain_len[i] + 1 >= max_chain
        need[k] = full_bytes[k] if compact else sizes[k]
        is_base[k] = first or compact
    room = capacity - used
    running = np.zeros(n_stores)
    accepted = np.zeros(m, dtype=np.bool_)
    for k in range(m):
        s = store_of[members[k]]
        running[s] += need[k]
        accepted[k] = running[s] <= room[s] + 1e-6
    for k in range(m):
        i = members[k]
        if not accepted[k]:
            refused[i] += 1
            continue
        pos = count[i] % ring
        time[i, pos] = captured_s
        nbytes[i, pos] = need[k]
        if is_base[k]:
            base_of[i, pos] = count[i]
            chain_len[i] = 0
        else:
            base_of[i, pos] = base_of[i, (count[i] - 1) % ring]
            chain_len[i] += 1
        count[i] += 1
        held[i] += need[k]
        used[store_of[i]] += need[k]
    for s in range(n_stores):
        peak_used[s] = max(peak_used[s], used[s])
    oldest_young = captured_s - max_age_s
    dropped = np.zeros(ring)
    for k in range(m):
        if not accepted[k]:
            continue
        i = members[k]
        c, st = count[i], start[i]
        first_young = c - 1
        for a in range(st, c):
            if time[i, a % ring] >= oldest_young:
                first_young = a
                break
        oldest_kept = min(max(c - retention_count, first_young), c - 1)
        new_start = base_of[i, oldest_kept % ring]
        for j in range(ring):
            a = st + j
            dropped[j] = nbytes[i, a % ring] if a < c and a < new_start else 0.0
        freed = _pairwise_sum(dropped, 0, ring)
        held[i] -= freed
        used[store_of[i]] -= freed
        start[i] = max(st, new_start)
    return accepted
