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

        ``sizes`` are the bytes that arrived (a base or a delta); ``full`` marks bases;
        ``full_bytes`` is what a base image of the instance weighs (for compaction).
        """
        members = np.asarray(members, dtype=np.int64)
        if members.size == 0:
            return np.zeros(0, dtype=np.bool_)
        first = full | (self.count[members] == self.start[members])
        compact = ~first & (self.chain_len[members] + 1 >= self.max_chain)
        need = np.where(first, sizes, np.where(compact, full_bytes, sizes))
        accepted = self._fits(members, need)
        m, need, first, compact = members[accepted], need[accepted], first[accepted], compact[accepted]
        refused = members[~accepted]
        self.refused[refused] += 1
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
            self._add(m, need)
            self._retain(m, captured_s)
        return accepted

    def _fits(self, members: IntArray, need: FloatArray) -> BoolArray:
        """Accept snapshots in order while each store has room for them."""
        ok = np.zeros(members.size, dtype=np.bool_)
        stores = self.store_of[members]
        for s in np.unique(stores).tolist():
            where = np.flatnonzero(stores == s)
            room = self.capacity[s] - self.used[s]
            ok[where] = np.cumsum(need[where]) <= room + 1e-6
        return ok

    def _add(self, members: IntArray, nbytes: FloatArray) -> None:
        np.add.at(self.held, members, nbytes)
        np.add.at(self.used, self.store_of[members], nbytes)
        np.maximum(self.peak_used, self.used, out=self.peak_used)

    def _retain(self, members: IntArray, now: float) -> None:
        """Drop what neither retention nor a kept snapshot's restore chain needs."""
        count, start = self.count[members], self.start[members]
        span = np.arange(self.ring)
        absolute = start[:, None] + span[None, :]
        valid = absolute < count[:, None]
        pos = absolute % self.ring
        times = np.where(valid, self.time[members[:, None], pos], np.nan)
        young = valid & (times >= now - self.max_age_s)
        by_count = count - self.retention_count
        first_young = np.where(young.any(axis=1), start + np.argmax(young, axis=1), count - 1)
        oldest_kept = np.minimum(np.maximum(by_count, first_young), count - 1)
        new_start = self.base_of[members, oldest_kept % self.ring]
        drop = valid & (absolute < new_start[:, None])
        freed = (self.nbytes[members[:, None], pos] * drop).sum(axis=1)
        self.held[members] -= freed
        np.subtract.at(self.used, self.store_of[members], freed)
        self.start[members] = np.maximum(start, new_start)
