"""Carrying out migrations in the twin: live moves inside an IVN and restores into another IVN.

Every move is carried out by one of the strategies of :mod:`sim.strategies` (precopy, cold,
mirror_restore), chosen per migration by :meth:`MigrationExecutor.plan` from uncontended estimates
(``controller.migration_strategy``). The copy itself is simulated round by round on the shared
network, so concurrent migrations slow each other down and their estimates can be compared with
their outcomes in the migrations frame.

* **Live migration** (same IVN, new host): the destination reserves the instance at once and pays
  ``MIGRATION_CPU_OVERHEAD`` of its demand while it arrives; the instance loses
  ``MIGRATION_DEGRADATION`` of its demand until it has moved, and is ``instance_down`` only during
  the stop-and-copy (the whole copy for a cold copy).
* **Restore into another IVN** (the workflow's ``create_from_snapshot``): the replacement is built
  from the latest snapshot already in the target IVN's Mirror Store (restore at the store's
  throughput) while only the state dirtied since that snapshot crosses the inter-IVN link; without a
  snapshot the whole state crosses (pre-copy or cold). The replacement then serves traffic as the
  load balancer shifts weight to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy

from policies.records import MirrorSnapshot, Move
from sim.datacenter import Datacenter
from sim.mirroring import SimMirroring
from sim.operations import SimOperation, completed
from sim.strategies import (
    RESUME_S,
    CopyOutcome,
    choose_strategy,
    estimate_cold,
    estimate_mirror_restore,
    estimate_pre_copy,
    simulate_copy,
)

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
    "estimated_downtime_s",
    "rounds",
    "converged",
)


@dataclass(frozen=True, slots=True)
class StrategyPlan:
    """The strategy chosen for one migration and what its simulation starts from.

    Attributes:
        estimate: The chosen strategy's uncontended estimate (recorded next to the outcome).
        first_bytes: Bytes of round 0 (the state, or the delta since the snapshot).
        rate_Bps: Uncontended path rate used for the estimate and as the rate before any round ends.
        restore_s: Store restore time round 0 waits for (mirror_restore only).
    """

    estimate: CopyOutcome
    first_bytes: float
    rate_Bps: float
    restore_s: float


class MigrationRefusedError(Exception):
    """A migration the world cannot start (instance busy, target unavailable or too small)."""


class MigrationExecutor:
    """Starts and completes migrations, updating placement and the per-instance counters."""

    def __init__(
        self,
        env: simpy.Environment,
        dc: Datacenter,
        mirroring: SimMirroring,
        *,
        max_downtime_s: float,
        max_precopy_rounds: int = 30,
        strategy: str = "auto",
    ):
        self.env = env
        self.dc = dc
        self.mirroring = mirroring
        self.max_downtime_s = max_downtime_s
        self.max_precopy_rounds = max_precopy_rounds
        self.strategy = strategy
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
        ivn = int(dc.host_ivn[h])
        plan = self.plan(i, ivn, h, self.mirroring.latest(i, ivn))
        dc.begin_live_migration(i, h)
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_started[k] += 1
        done = self.env.event()

        def finish(outcome: CopyOutcome) -> None:
            dc.complete_live_migration(i, h)
            done.succeed(True)

        self._run(i, src, h, plan, reason, "Succeeded", finish, abort=lambda: done.succeed(False))
        return SimOperation(done)

    # --- strategies -------------------------------------------------------------------------------
    def plan(self, i: int, ivn: int, h: int, snapshot: MirrorSnapshot | None) -> StrategyPlan:
        """Estimate the strategies applicable to a move and pick one as the scenario says.

        Every strategy applicable to moving ``i`` into ``ivn`` (host ``h``, or -1 if not chosen yet)
        is estimated at uncontended rates. ``auto`` applies :func:`~sim.strategies.choose_strategy`;
        a forced ``mirror_restore`` without a snapshot in ``ivn`` falls back to ``precopy`` (there is
        nothing to restore from).
        """
        dc = self.dc
        src = int(dc.host_of[i])
        rate = self._path_rate_Bps(src, ivn)
        if h >= 0:
            rate = min(rate, float(dc.network.capacity_Bps[len(dc.host_ids) + h]))
        state = float(dc.state_bytes[i])
        dirty = float(self.mirroring.dirty_Bps(i))
        w = float(self.mirroring.working_set[i])
        limits = {"max_downtime_s": self.max_downtime_s, "max_rounds": self.max_precopy_rounds}
        options = [estimate_pre_copy(state, rate, dirty, w, **limits), estimate_cold(state, rate)]
        delta, restore_s = state, 0.0
        if snapshot is not None:
            delta = self.mirroring.delta_since_latest(i, self.env.now)
            restore_s = float(snapshot.memory_image) / (dc.scenario.topology.ivns[ivn].mirror_store_restore_bps / 8.0)
            options.append(estimate_mirror_restore(delta, restore_s, rate, dirty, w, **limits))
        by_kind = {o.kind: o for o in options}
        wanted = self.strategy
        target = self.max_downtime_s + RESUME_S
        chosen = choose_strategy(options, target) if wanted == "auto" else by_kind.get(wanted, by_kind["precopy"])
        first = delta if chosen.kind == "mirror_restore" else state
        return StrategyPlan(chosen, first, rate, restore_s if chosen.kind == "mirror_restore" else 0.0)

    def _run(
        self,
        i: int,
        src: int,
        h: int,
        plan: StrategyPlan,
        reason: str,
        outcome_label: str,
        finish: Callable[[CopyOutcome], None],
        abort: Callable[[], None] | None = None,
    ) -> None:
        """Simulate ``plan`` for instance ``i`` (``src`` -> ``h``), then account, record and ``finish``."""
        dc = self.dc
        env = self.env
        src_ivn, dst_ivn = int(dc.host_ivn[src]), int(dc.host_ivn[h])
        links = [src, len(dc.host_ids) + h]
        if src_ivn != dst_ivn:
            links.append(dc.ivn_link[(src_ivn, dst_ivn)])

        def overtaken() -> bool:
            """A host failure took the instance or one end of the copy down: the failover owns it now."""
            return dc.host_of[i] < 0 or not dc.host_available[src] or not dc.host_available[h]

        def pause() -> None:
            if overtaken():
                return
            dc.advance()
            dc.instance_down[i] = True
            dc.instance_down_since[i] = env.now
            dc.note_changed(i)

        est = plan.estimate
        proc = env.process(
            simulate_copy(
                env,
                dc.network,
                links,
                est.kind,
                first_bytes=plan.first_bytes,
                nominal_Bps=plan.rate_Bps,
                dirty_Bps=lambda: float(self.mirroring.dirty_Bps(i)),
                working_set_bytes=float(self.mirroring.working_set[i]),
                max_downtime_s=self.max_downtime_s,
                max_rounds=self.max_precopy_rounds,
                pause=pause,
                first_round_wait=env.timeout(plan.restore_s) if est.kind == "mirror_restore" else None,
            )
        )
        start = env.now

        def done(ev: simpy.Event) -> None:
            out: CopyOutcome = ev.value
            dc.advance()
            if overtaken():
                # The copy finished into or out of a failed host: nothing moved, and the instance's
                # down state and recovery belong to the failover (sim/failures.py).
                if dc.migrating_to[i] == h:
                    dc.migrating_to[i] = -1
                    dc.invalidate()
                if abort is not None:
                    abort()
                outcome = "Aborted"
            else:
                dc.instance_down[i] = False
                dc.instance_down_since[i] = np.nan
                dc.note_changed(i)
                finish(out)
                self._account(i, out.bytes_total, out.downtime_s)
                outcome = outcome_label
            self.rows.append(
                (
                    dc.instance_ids[i],
                    dc.host_ids[src],
                    dc.host_ids[h],
                    dc.ivn_names[src_ivn],
                    dc.ivn_names[dst_ivn],
                    out.kind,
                    reason,
                    start,
                    env.now,
                    out.bytes_total,
                    est.duration_s,
                    out.downtime_s,
                    outcome,
                    est.downtime_s,
                    out.rounds,
                    out.converged,
                )
            )

        proc.callbacks.append(done)

    def _account(self, i: int, nbytes: float, downtime_s: float) -> None:
        dc = self.dc
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_finished[k] += 1
        dc.step.migration_bytes[k] += nbytes
        dc.instance_migrations[i] += 1
        dc.instance_bytes_moved[i] += nbytes
        dc.instance_downtime_s[i] += downtime_s

    # --- restore into another IVN (the workflow's create_from_snapshot) ---------------------------
    def pick_host(self, i: int, ivn: int, *, pack_below: float | None = None) -> int:
        """An available host of ``ivn`` with room for instance ``i``, or -1.

        The least loaded one (spreading), or with ``pack_below`` the fullest running host whose
        utilisation stays at or under it (falling back to the least loaded): a failover that spreads
        into switched-off hosts in a consolidating fleet only hands the controller hosts to evacuate.
        """
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
        after = (load[fits] + need) / dc.host_cap[cand]
        if pack_below is not None:
            running = dc.host_powered()[cand] & (after <= pack_below)
            if running.any():
                return int(cand[running][np.argmax(after[running])])
        return int(cand[np.argmin(after)])

    def estimate_restore_s(self, i: int, ivn: int) -> float:
        """A-priori duration of moving instance ``i`` into ``ivn`` by the strategy it would get."""
        return self.plan(i, ivn, -1, self.mirroring.latest(i, ivn)).estimate.duration_s

    def _path_rate_Bps(self, src: int, ivn: int) -> float:
        dc = self.dc
        caps = dc.network.capacity_Bps
        rate = float(caps[src])
        key = (int(dc.host_ivn[src]), ivn)
        if key[0] != key[1] and key in dc.ivn_link:
            rate = min(rate, float(caps[dc.ivn_link[key]]))
        return rate

    def restore(self, i: int, ivn: int, h: int, snapshot: MirrorSnapshot | None, reason: str) -> SimOperation[int]:
        """Build a replacement of ``i`` on host ``h`` of ``ivn``; the value is ``h`` when it has caught up.

        The copy follows the strategy :meth:`plan` picks: ``mirror_restore`` when ``snapshot`` is given
        (the store restores the image while the delta crosses the network), else ``precopy`` or
        ``cold`` across the inter-IVN link. The source keeps its host; the load balancer then shifts
        traffic to the replacement.
        """
        dc = self.dc
        src = int(dc.host_of[i])
        src_ivn = int(dc.host_ivn[src])
        if src_ivn != ivn and (src_ivn, ivn) not in dc.ivn_link:
            raise MigrationRefusedError(f"no link between {dc.ivn_names[src_ivn]} and {dc.ivn_names[ivn]}")
        dc.advance()
        plan = self.plan(i, ivn, h, snapshot)
        dc.busy[i] = True
        dc.migrating_to[i] = h
        dc.invalidate()
        k = min(dc.k, dc.n_steps - 1)
        dc.step.migrations_started[k] += 1
        done = self.env.event()

        def caught_up(_outcome: CopyOutcome) -> None:
            dc.migrating_to[i] = -1
            dc.shadow_host[i] = h
            dc.shadow_weight[i] = 0.0
            dc.invalidate()
            done.succeed(h)

        def lost() -> None:
            dc.busy[i] = False
            dc.invalidate()  # the degraded-demand total counts busy instances too
            done.fail(MigrationRefusedError(f"a host failed during the restore of {dc.instance_ids[i]}"))

        self._run(i, src, h, plan, reason, "Restored", caught_up, abort=lost)
        return SimOperation(done)
