"""Carrying out migrations in the twin: live moves inside an IVN and restores into another IVN.

* **Live migration** (same IVN, new host): the pre-copy model sizes the bytes from the instance's
  state, its dirty rate and the nominal share of the source and destination NICs; the shared network
  then moves them, so concurrent migrations slow each other down. The destination reserves the
  instance at once and pays ``MIGRATION_CPU_OVERHEAD`` of its demand while it arrives; the instance
  loses ``MIGRATION_DEGRADATION`` of its demand until it has moved.
* **Restore into another IVN** (the workflow's ``create_from_snapshot``): the replacement is built
  from the latest snapshot already in the target IVN's Mirror Store (restore at the store's
  throughput) while only the state dirtied since that snapshot crosses the inter-IVN link; without a
  snapshot the whole state crosses. The replacement then serves traffic as the load balancer shifts
  weight to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from policies.records import MirrorSnapshot, Move
from sim.datacenter import Datacenter
from sim.migration_physics import plan_pre_copy
from sim.mirroring import SimMirroring
from sim.operations import SimOperation, completed

MIGRATION_COLUMNS = (
    "instance_id",
    "source_host",
    "target_host",
    "source_ivn",
    "target_ivn",
    "kind",
    "reason",
    "start_s",
    "end_s",
    "bytes",
    "estimated_duration_s",
    "downtime_s",
    "outcome",
)


class MigrationRefusedError(Exception):
    """A migration the world cannot start (instance busy, target unavailable or too small)."""


class MigrationExecutor:
    """Starts and completes migrations, updating placement and the per-instance counters."""

    def __init__(self, env: simpy.Environment, dc: Datacenter, mirroring: SimMirroring, *, max_downtime_s: float):
        self.env = env
        self.dc = dc
        self.mirroring = mirroring
        self.max_downtime_s = max_downtime_s
        self.rows: list[tuple[object, ...]] = []

    # --- live migration inside an IVN -----------------------------------------------------------
    def live_migrate(self, moves: Sequence[Move]) -> list[SimOperation[bool]]:
        """Start a batch of live migrations; each operation yields True when the instance has moved."""
        dc = self.dc
        dc.advance()
        ops: list[SimOperation[bool]] = []
        for move in moves:
            i = dc.instance_index.get(move.instance_id, -1)
            h = dc.host_index.get(move.target_host or "", -1)
            src = int(dc.host_of[i]) if i >= 0 else -1
            if (
                i < 0
                or h < 0
                or src < 0
                or src == h
                or dc.migrating_to[i] >= 0
                or dc.busy[i]
                or not dc.host_available[h]
                or dc.host_ivn[h] != dc.host_ivn[src]
            ):
                ops.append(completed(self.env, False))
                continue
            ops.append(self._start_live(i, src, h, str(move.reason)))
        return ops

    def _start_live(self, i: int, src: int, h: int, reason: str) -> SimOperation[bool]:
        dc = self.dc
        rate = min(dc.host_nic_bps[src], dc.host_nic_bps[h]) / 8.0
        plan = plan_pre_copy(
            float(dc.state_bytes[i]),
            rate,
            float(self.mirroring.dirty_Bps(i)),
            max_downtime_s=self.max_downtime_s,
        )
        dc.begin_live_migration(i, h)
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_started[k] += 1
        t = dc.network.start([src, len(dc.host_ids) + h], plan.bytes_total, tag="migration")
        start = self.env.now
        done = self.env.event()

        def finish(_ev: simpy.Event) -> None:
            dc.advance()
            downtime = plan.last_round_bytes / max(t.rate_bps / 8.0, 1.0) + 0.02
            dc.complete_live_migration(i, h)
            self._account(i, plan.bytes_total, downtime)
            self.rows.append(
                (
                    dc.instance_ids[i],
                    dc.host_ids[src],
                    dc.host_ids[h],
                    dc.ivn_names[dc.host_ivn[src]],
                    dc.ivn_names[dc.host_ivn[h]],
                    "live",
                    reason,
                    start,
                    self.env.now,
                    plan.bytes_total,
                    plan.duration_s,
                    downtime,
                    "Succeeded",
                )
            )
            done.succeed(True)

        t.done.callbacks.append(finish)
        return SimOperation(done)

    def _account(self, i: int, nbytes: float, downtime_s: float) -> None:
        dc = self.dc
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_finished[k] += 1
        dc.step.migration_bytes[k] += nbytes
        dc.instance_migrations[i] += 1
        dc.instance_bytes_moved[i] += nbytes
        dc.instance_downtime_s[i] += downtime_s

    # --- restore into another IVN (the workflow's create_from_snapshot) ---------------------------
    def pick_host(self, i: int, ivn: int) -> int:
        """Least-loaded available host of ``ivn`` with room for instance ``i``, or -1."""
        dc = self.dc
        hosts = np.flatnonzero((dc.host_ivn == ivn) & dc.host_available)
        if hosts.size == 0:
            return -1
        load = dc.host_load_mips()[hosts]
        ram_used = np.bincount(
            dc.host_of[dc.host_of >= 0], weights=dc.ram[dc.host_of >= 0], minlength=len(dc.host_ids)
        )[hosts]
        need = max(float(dc.request[i]), 1e-9)
        fits = (
            (dc.host_pe_mips[hosts] >= min(need, float(dc.mips[i])) / dc.pes[i])
            & (dc.host_pes[hosts] >= dc.pes[i])
            & (load + need <= dc.host_cap[hosts])
            & (ram_used + dc.ram[i] <= dc.host_ram[hosts])
        )
        if not fits.any():
            return -1
        cand = hosts[fits]
        return int(cand[np.argmin((load[fits] + need) / dc.host_cap[cand])])

    def estimate_restore_s(self, i: int, ivn: int) -> float:
        """A-priori duration of restoring instance ``i`` into ``ivn`` (uncontended links)."""
        dc = self.dc
        src = int(dc.host_of[i])
        delta = (
            self.mirroring.delta_since_latest(i, self.env.now)
            if self.mirroring.latest(i, ivn)
            else float(dc.state_bytes[i])
        )
        rate = self._path_rate_Bps(src, ivn)
        restore = float(dc.state_bytes[i]) / (self.dc.scenario.topology.ivns[ivn].mirror_store_restore_bps / 8.0)
        return max(delta / rate, restore if self.mirroring.latest(i, ivn) else 0.0)

    def _path_rate_Bps(self, src: int, ivn: int) -> float:
        dc = self.dc
        caps = dc.network.capacity_Bps
        rate = float(caps[src])
        key = (int(dc.host_ivn[src]), ivn)
        if key[0] != key[1] and key in dc.ivn_link:
            rate = min(rate, float(caps[dc.ivn_link[key]]))
        return rate

    def restore(self, i: int, ivn: int, h: int, snapshot: MirrorSnapshot | None, reason: str) -> SimOperation[int]:
        """Build a replacement of ``i`` on host ``h`` of ``ivn``; the value is ``h`` when it has caught up."""
        dc = self.dc
        env = self.env
        src = int(dc.host_of[i])
        src_ivn = int(dc.host_ivn[src])
        if src_ivn != ivn and (src_ivn, ivn) not in dc.ivn_link:
            raise MigrationRefusedError(f"no link between {dc.ivn_names[src_ivn]} and {dc.ivn_names[ivn]}")
        dc.advance()
        dc.busy[i] = True
        dc.migrating_to[i] = h
        dc.invalidate()
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_started[k] += 1
        nbytes = self.mirroring.delta_since_latest(i, env.now) if snapshot is not None else float(dc.state_bytes[i])
        links = [src, len(dc.host_ids) + h]
        if src_ivn != ivn:
            links.append(dc.ivn_link[(src_ivn, ivn)])
        transfer = dc.network.start(links, nbytes, tag="migration")
        events = [transfer.done]
        if snapshot is not None:
            restore_s = float(snapshot.memory_image) / (dc.scenario.topology.ivns[ivn].mirror_store_restore_bps / 8.0)
            events.append(env.timeout(restore_s))
        start = env.now
        done = env.event()
        estimate = self.estimate_restore_s(i, ivn)

        def caught_up(_ev: simpy.Event) -> None:
            dc.advance()
            dc.migrating_to[i] = -1
            dc.shadow_host[i] = h
            dc.shadow_weight[i] = 0.0
            dc.invalidate()
            self._account(i, nbytes, 0.0)
            self.rows.append(
                (
                    dc.instance_ids[i],
                    dc.host_ids[src],
                    dc.host_ids[h],
                    dc.ivn_names[src_ivn],
                    dc.ivn_names[ivn],
                    "mirror-restore" if snapshot is not None else "full-copy",
                    reason,
                    start,
                    env.now,
                    nbytes,
                    estimate,
                    0.0,
                    "Restored",
                )
            )
            done.succeed(h)

        env.all_of(events).callbacks.append(caught_up)
        return SimOperation(done)
