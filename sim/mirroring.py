"""Resource Mirroring Agents and Mirror Stores, batched per IVN.

Each instance's RMA takes a full (base) snapshot, then incremental deltas every
``snapshot_interval_s`` (per instance; the controller can change it at run time). A delta holds the
unique memory dirtied since the previous capture, ``W * (1 - exp(-d * tau / W))`` with ``W`` the
writable working set and ``d`` a dirty rate proportional to the instance's CPU load, divided by the
compression and deduplication ratios. All snapshots due at the same instant travel as one weighted
transfer per (source IVN, store IVN) pair, sharing the inter-IVN link and the store's ingest with
migrations. A snapshot exists for restore only once its last byte has reached the store, and an
agent sends one snapshot at a time: a capture due while its previous upload is still in flight is
skipped (a base image of a large fleet can take longer than one interval to reach the store); an
agent whose snapshot a full store refused backs off exponentially before it tries again.

What each store holds — retention by count and age, chain compaction, capacity — is
:class:`sim.mirror_store.SnapshotChains`. A delta is only accepted on top of the snapshot it was
computed against; when the store refused that one (full), the agent falls back to the last snapshot
the store holds, so no chain ever references a missing snapshot.
"""

from __future__ import annotations

import numpy as np
import simpy

from policies.records import MirrorSnapshot
from scenarios.spec import MB, RmaSettings
from sim.datacenter import Datacenter
from sim.migration_physics import unique_dirty_bytes, unique_dirty_bytes_array
from sim.mirror_store import SnapshotChains

#: After ``r`` refusals in a row an agent waits ``interval x 2**min(r, cap)`` before its next capture.
REFUSAL_BACKOFF_MAX_DOUBLINGS = 5


class SimMirroring:
    """All RMAs and Mirror Stores of the twin, advanced by one SimPy process."""

    def __init__(self, env: simpy.Environment, dc: Datacenter, settings: RmaSettings, store_ivn: np.ndarray):
        self.env = env
        self.dc = dc
        self.settings = settings
        n = len(dc.instance_ids)
        self.store_ivn = store_ivn
        self.interval_s = np.full(n, settings.snapshot_interval_s)
        self.next_due_s = np.zeros(n)
        self.last_capture_s = np.full(n, -np.inf)  # capture time of the last snapshot sent
        self.latest_s = np.full(n, -np.inf)  # capture time of the latest snapshot complete in the store
        capacity = np.array([ivn.mirror_store_capacity_gb * 1e9 for ivn in dc.scenario.topology.ivns])
        self.chains = SnapshotChains(
            n,
            store_ivn,
            capacity,
            retention_count=settings.retention_count,
            retention_max_age_s=settings.retention_max_age_s,
            max_chain_length=settings.max_chain_length,
        )
        self.snapshots_taken = np.zeros(n, dtype=np.int64)
        # One upload at a time per agent: a capture falling due while the previous snapshot is still
        # on its way is skipped (the next delta then covers the longer interval), as a periodic
        # backup job does when its previous run has not finished.
        self.uploading = np.zeros(n, dtype=np.bool_)
        self.snapshots_skipped_uploading = np.zeros(n, dtype=np.int64)
        self.refusal_streak = np.zeros(n, dtype=np.int64)  # snapshots refused in a row, per agent
        self.bytes_sent = 0.0
        self.reduction = settings.compression_ratio * settings.dedup_ratio
        self.working_set = dc.state_bytes * settings.writable_working_set_fraction
        self.dirty_full_Bps = settings.dirty_rate_mb_s_at_full_load * MB
        self._wakeup = env.event()
        if settings.enabled:
            dc.rma_overhead_mips[:] = settings.cpu_overhead_mips
            dc.invalidate()
            env.process(self._run())

    # --- queries used by the adapters -----------------------------------------------------------
    def dirty_Bps(self, idx: np.ndarray | int) -> np.ndarray | float:
        """Current page-dirtying rate (bytes/s) of instances, proportional to their CPU load.

        For one instance (an integer index) the rate is a float computed with plain Python
        arithmetic: every pre-copy round and migration plan asks for one instance, and numpy's
        per-call overhead (``np.clip`` on a scalar) was most of the cost. The arithmetic is the same
        IEEE operations, so the value is identical to the array form's.
        """
        if isinstance(idx, int | np.integer):
            mips = float(self.dc.mips[idx])
            if mips > 0.0:
                util = float(self.dc.request[idx]) / mips
                return self.dirty_full_Bps * min(max(util, 0.0), 1.0)
        util = self.dc.request[idx] / self.dc.mips[idx]
        return self.dirty_full_Bps * np.clip(util, 0.0, 1.0)

    def stored_bytes(self) -> float:
        """Bytes held by all Mirror Stores (bases plus retained deltas)."""
        return self.chains.stored_bytes()

    def data_at_risk_bytes(self, now: float) -> np.ndarray:
        """Per instance, the bytes written since its latest snapshot reached the store (all, if none).

        This is what a failure at ``now`` would lose: uncompressed unique dirty memory.
        """
        age = now - self.latest_s
        known = np.isfinite(age)
        out = np.asarray(self.dc.state_bytes, dtype=np.float64).copy()
        if known.any():
            idx = np.flatnonzero(known)
            out[idx] = unique_dirty_bytes_array(self.working_set[idx], self.dirty_Bps(idx), age[idx])
        return out

    def latest(self, i: int, ivn: int) -> MirrorSnapshot | None:
        """Latest complete snapshot of instance ``i`` in IVN ``ivn``'s store, if there is one."""
        if not self.settings.enabled or self.store_ivn[i] != ivn or not np.isfinite(self.latest_s[i]):
            return None
        return MirrorSnapshot(
            instance_id=self.dc.instance_ids[i],
            timestamp=float(self.latest_s[i]),
            memory_image=int(self.dc.state_bytes[i]),
            process_list=("workload",),
            file_list=(),
            ivn=self.dc.ivn_names[ivn],
            chain_length=self.chains.restore_chain_length(i),
        )

    def delta_since_latest(self, i: int, now: float) -> float:
        """Compressed bytes dirtied since instance ``i``'s latest complete snapshot (all if none)."""
        if not np.isfinite(self.latest_s[i]):
            return float(self.dc.state_bytes[i])
        raw = unique_dirty_bytes(float(self.working_set[i]), float(self.dirty_Bps(i)), now - float(self.latest_s[i]))
        return raw / self.reduction

    def set_interval(self, i: int, interval_s: float) -> None:
        """Change instance ``i``'s snapshot interval; the next capture is rescheduled at once."""
        self.interval_s[i] = interval_s
        last = self.last_capture_s[i]
        self.next_due_s[i] = (last + interval_s) if np.isfinite(last) else self.env.now
        if not self._wakeup.triggered:
            self._wakeup.succeed()

    # --- the agents -----------------------------------------------------------------------------
    def _capture(self, due: np.ndarray) -> None:
        """Size the snapshots of the instances ``due`` now and send them, one transfer per IVN pair."""
        now = self.env.now
        dc = self.dc
        self.next_due_s[due] = now + self.interval_s[due]
        due = due[dc.host_of[due] >= 0]
        busy = self.uploading[due]
        if busy.any():
            self.snapshots_skipped_uploading[due[busy]] += 1
            due = due[~busy]
        if due.size == 0:
            return
        self.uploading[due] = True
        parents = self.last_capture_s[due]  # the snapshot each delta was computed against (a copy)
        first = ~np.isfinite(parents)
        tau = np.where(first, 0.0, now - parents)
        raw = unique_dirty_bytes_array(self.working_set[due], self.dirty_Bps(due), tau)
        size = np.where(first, dc.state_bytes[due], raw) / self.reduction
        self.last_capture_s[due] = now
        src_ivn = dc.host_ivn[dc.host_of[due]]
        for a, b, positions in _transfer_groups(src_ivn, self.store_ivn[due]):
            members = due[positions]
            sizes = size[positions]
            firsts = first[positions]
            parent = parents[positions]
            links = [int(dc.store_link[b])]
            if a != b:
                links.append(dc.ivn_link[(a, b)])
            total = float(sizes.sum())
            self.bytes_sent += total
            k = min(dc.k, dc.n_steps - 1)
            dc.step.snapshot_bytes[k] += total
            t = dc.network.start(links, total, weight=float(len(members)), tag="snapshot")
            t.done.callbacks.append(
                lambda _ev, m=members, s=sizes, f=firsts, p=parent, c=now: self._arrived(m, s, f, p, c)
            )

    def _arrived(
        self, members: np.ndarray, sizes: np.ndarray, firsts: np.ndarray, parents: np.ndarray, captured: float
    ) -> None:
        """Snapshots whose bytes are all in the store become restorable if the store accepts them.

        A delta is accepted only on top of the snapshot it was computed against; one whose parent
        the store does not hold (refused earlier) is refused too.
        """
        self.uploading[members] = False
        # Usually every snapshot of the batch is newer than the store's and chained to it; the
        # filters below are then skipped, which is most of this method's cost per arrival.
        newer = captured > self.latest_s[members]
        if not newer.all():
            members, sizes, firsts, parents = members[newer], sizes[newer], firsts[newer], parents[newer]
        chained = firsts | (parents == self.latest_s[members])
        full_bytes = self.dc.state_bytes[members] / self.reduction
        if chained.all():
            accepted = self.chains.append(members, captured, sizes, firsts, full_bytes)
        else:
            accepted = np.zeros(members.size, dtype=np.bool_)
            ok = np.flatnonzero(chained)
            accepted[ok] = self.chains.append(members[ok], captured, sizes[ok], firsts[ok], full_bytes[ok])
            self.chains.refused[members[~chained]] += 1
        if accepted.all():
            self.latest_s[members] = captured
            self.snapshots_taken[members] += 1
            self.refusal_streak[members] = 0
            return
        stored = members[accepted]
        self.latest_s[stored] = captured
        self.snapshots_taken[stored] += 1
        self.refusal_streak[stored] = 0
        # The agent's next delta must build on what the store really holds, and it backs off: a store
        # that refused is full, and re-sending every interval would flood the link with images that
        # are refused again. The wait doubles with each refusal in a row, up to a cap.
        lost = members[~accepted]
        self.last_capture_s[lost] = self.latest_s[lost]
        self.refusal_streak[lost] += 1
        backoff = self.interval_s[lost] * np.exp2(np.minimum(self.refusal_streak[lost], REFUSAL_BACKOFF_MAX_DOUBLINGS))
        self.next_due_s[lost] = np.maximum(self.next_due_s[lost], self.env.now + backoff)

    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            now = env.now
            due = np.flatnonzero(self.next_due_s <= now + 1e-9)
            if due.size:
                self._capture(due)
            nxt = float(self.next_due_s.min())
            self._wakeup = env.event()
            yield env.timeout(max(nxt - env.now, 0.0)) | self._wakeup


#: Number of distinct (source, store) pair keys that fit the 16-bit keys :func:`_transfer_groups` sorts.
_SMALL_KEYS = 1 << 16


def _transfer_groups(src_ivn: np.ndarray, store_ivn: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Split snapshots into one batch per (source IVN, store IVN) pair.

    Returns ``(source, store, positions)`` per pair, pairs in the order of their first snapshot and
    positions ascending within each — the order the per-instance Python loop this replaces (a dict of
    lists, most of ``_capture``'s time with 20,000 instances) produced, so transfers still start in
    the same order and the run is unchanged.
    """
    if src_ivn.size == 0:
        return []
    src = np.asarray(src_ivn, dtype=np.int64)
    dst = np.asarray(store_ivn, dtype=np.int64)
    if (src == src[0]).all() and (dst == dst[0]).all():
        return [(int(src[0]), int(dst[0]), np.arange(src.size))]
    span = int(dst.max()) + 1
    if src.min() >= 0 and dst.min() >= 0 and (int(src.max()) + 1) * span <= _SMALL_KEYS:
        # IVN indices are small: one 16-bit key per pair, which numpy's stable sort orders by radix
        # sort, several times faster than a two-key lexsort over 20,000 instances.
        key = (src * span + dst).astype(np.uint16)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        cuts = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
    else:
        order = np.lexsort((dst, src))  # stable: positions stay ascending within a pair
        a, b = src[order], dst[order]
        cuts = np.flatnonzero((a[1:] != a[:-1]) | (b[1:] != b[:-1])) + 1
    runs = np.split(order, cuts)
    runs.sort(key=lambda run: int(run[0]))
    return [(int(src[run[0]]), int(dst[run[0]]), run) for run in runs]
