"""The ports of :mod:`policies.ports`, implemented over the twin's world.

These adapters are the only way the core touches the twin; ``mirrortwin.wiring`` and
:mod:`sim.runner` construct them, and the same controller code runs against ``realworld``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import simpy

from policies.fleet import FleetSnapshot
from policies.records import MirrorSnapshot, Move
from policies.scheduled_events import ScheduledEvent
from scenarios.population import InstancePopulation
from scenarios.spec import Scenario
from sim.datacenter import Datacenter
from sim.failures import HostFailures
from sim.load_balancer import SimLoadBalancer, split_backend
from sim.migration import MigrationExecutor, MigrationRefusedError
from sim.mirroring import SimMirroring
from sim.operations import SimOperation, completed, failed


class SimClock:
    """Simulated time."""

    def __init__(self, env: simpy.Environment):
        self.env = env

    def now(self) -> float:
        """Current simulated time (s)."""
        return float(self.env.now)


class SimTelemetry:
    """What the RMAs report: current demand and utilisation history, sampled at the RMA interval."""

    def __init__(
        self,
        dc: Datacenter,
        sampling_interval_s: float,
        *,
        failures: HostFailures | None = None,
        mirroring: SimMirroring | None = None,
        declared_events: Sequence[ScheduledEvent] = (),
    ):
        self.dc = dc
        self.stride = max(1, round(sampling_interval_s / dc.step_s))
        self.failures = failures
        self.mirroring = mirroring
        self.declared_events = tuple(declared_events)

    def fleet(self, history_len: int) -> FleetSnapshot:
        """Build the fleet view at the current step, with ``history_len`` samples per instance."""
        dc = self.dc
        k = min(dc.k, dc.cpu_trace.shape[1] - 1)
        cols = np.arange(k, k - history_len * self.stride, -self.stride)[::-1]
        hist = np.full((len(dc.instance_ids), history_len), np.nan)
        ok = cols >= 0
        if ok.any():
            hist[:, ok] = dc.cpu_trace[:, cols[ok]]
        return FleetSnapshot(
            now_s=float(dc.env.now),
            ivn_names=dc.ivn_names,
            host_ids=dc.host_ids,
            host_ivn=dc.host_ivn,
            host_cpu_capacity_mips=dc.host_cap,
            host_pe_mips=dc.host_pe_mips,
            host_ram_bytes=dc.host_ram,
            host_power_w=dc.host_power_w,
            host_available=self._decidable_hosts(),
            instance_ids=dc.instance_ids,
            instance_host=dc.host_of.copy(),
            instance_cpu_capacity_mips=dc.mips,
            instance_cpu_request_mips=dc.request.copy(),
            instance_ram_bytes=dc.ram,
            instance_in_migration=(dc.migrating_to >= 0) | dc.busy | (dc.shadow_host >= 0) | dc.instance_down,
            instance_cpu_history=hist,
            instance_pes=dc.pes,
            host_pes=dc.host_pes,
            host_health=self.host_health() if self.failures is not None else None,
            instance_allowed_ivns=self._allowed_ivns(),
            ivn_cost_per_gb_hour=np.array([i.cost_per_gb_hour for i in dc.scenario.topology.ivns], dtype=np.float64),
            declared_events=self.declared_events,
            history_step_s=self.stride * dc.step_s,
            **self._mirror_view(),
        )

    def _allowed_ivns(self) -> np.ndarray | None:
        """The scenario's IVN restriction as the (instances, IVNs) matrix policies read; None if none."""
        allowed = np.asarray(self.dc.scenario.allowed_ivns(), dtype=bool)
        if allowed.all():
            return None
        return np.broadcast_to(allowed, (len(self.dc.instance_ids), allowed.size))

    def _decidable_hosts(self) -> np.ndarray:
        """Hosts a policy may act on now: up, and with no instance still arriving.

        A migration in flight has booked CPU and memory on its target that the placement arrays do not
        show yet (the instance still counts on its source). Letting a policy place more onto that host,
        or evacuate it as "under-loaded", double-books it and makes consecutive rounds undo each other;
        so a receiving host is withheld from decisions until its arrivals land.
        """
        dc = self.dc
        receiving = np.zeros(len(dc.host_ids), dtype=bool)
        for target in (dc.migrating_to, dc.shadow_host):
            receiving[target[target >= 0]] = True
        return dc.host_available & ~receiving

    def _mirror_view(self) -> dict[str, np.ndarray]:
        """Where each instance's freshest mirror is and how old it is (what a restore would start from)."""
        m = self.mirroring
        if m is None or not m.settings.enabled:
            return {}
        stored = np.isfinite(m.latest_s)
        return {
            "instance_mirror_ivn": np.where(stored, m.store_ivn, -1).astype(np.int64),
            "instance_mirror_age_s": np.where(stored, float(self.dc.env.now) - m.latest_s, np.inf),
        }

    def health_metrics(self, instance_id: str) -> Mapping[str, float]:
        """Health readings of the instance's host now; empty without a failure model or a live host."""
        if self.failures is None:
            return {}
        return self.failures.health_of_host(int(self.dc.host_of[self.dc.instance_index[instance_id]]))

    def host_health(self, now: float | None = None) -> dict[str, np.ndarray]:
        """Health readings of every host at once (NaN for a failed host), for vectorised predictors.

        Returns:
            Metric name -> array over hosts (error counts per sampling interval); empty without a
            failure model.
        """
        if self.failures is None:
            return {}
        table = self.failures.host_health(now)
        return {name: table[:, j] for j, name in enumerate(self.failures.health_names)}


def declared_schedule(scenario: Scenario, population: InstancePopulation) -> tuple[ScheduledEvent, ...]:
    """The scenario's events as an operator declares them: window, declared multiplier, instances.

    This is the one place the twin turns its events into what the core sees, and it reads only the
    declared fields: the actual multiplier and the ramp stay in the world (:mod:`scenarios.events`).
    Times stay relative to the run's start, the clock of the fleet view's ``now_s``.
    """
    members = population.event_members
    out: list[ScheduledEvent] = []
    for k, event in enumerate(scenario.events):
        rows = members[k] if members is not None else np.ones(population.n_instances, dtype=bool)
        ids = None if rows.all() else tuple(population.instance_ids[i] for i in np.flatnonzero(rows).tolist())
        out.append(
            ScheduledEvent(
                name=event.name,
                start_s=event.start_s,
                end_s=event.end_s,
                multiplier=event.declared_multiplier,
                kind=event.kind,
                instance_ids=ids,
            )
        )
    return tuple(out)


class SimMirrorStorePort:
    """The Mirror Stores, as the controller sees them."""

    def __init__(self, dc: Datacenter, mirroring: SimMirroring):
        self.dc = dc
        self.mirroring = mirroring

    def latest_snapshot(self, instance_id: str, ivn: str) -> MirrorSnapshot | None:
        """Latest complete snapshot of ``instance_id`` in ``ivn``'s store."""
        i = self.dc.instance_index[instance_id]
        return self.mirroring.latest(i, self.dc.ivn_names.index(ivn))

    def set_snapshot_interval(self, instance_id: str, interval_s: float) -> None:
        """Change the instance's snapshot interval from now on."""
        self.mirroring.set_interval(self.dc.instance_index[instance_id], float(interval_s))


class SimInstanceProvider:
    """Capacity of each IVN, restores into it, live migrations inside it, decommissions."""

    def __init__(self, env: simpy.Environment, dc: Datacenter, executor: MigrationExecutor):
        self.env = env
        self.dc = dc
        self.executor = executor

    def has_capacity(self, ivn: str, instance_id: str) -> bool:
        """True if some available host of ``ivn`` can take the instance's demand and memory now."""
        i = self.dc.instance_index[instance_id]
        return self.executor.pick_host(i, self.dc.ivn_names.index(ivn)) >= 0

    def estimate_migration_s(self, instance_id: str, ivn: str) -> float:
        """Uncontended estimate of restoring the instance into ``ivn``."""
        return self.executor.estimate_restore_s(self.dc.instance_index[instance_id], self.dc.ivn_names.index(ivn))

    def create_from_snapshot(
        self, instance_id: str, snapshot: MirrorSnapshot | None, ivn: str, host: str | None
    ) -> SimOperation[str]:
        """Restore a replacement in ``ivn``; its id is ``<instance>@<host>``."""
        dc = self.dc
        i = dc.instance_index[instance_id]
        k = dc.ivn_names.index(ivn)
        h = dc.host_index[host] if host is not None else self.executor.pick_host(i, k)
        if h < 0:
            return failed(self.env, MigrationRefusedError(f"no host of {ivn} can take {instance_id}"))
        try:
            op = self.executor.restore(i, k, h, snapshot, reason="workflow")
        except MigrationRefusedError as exc:
            return failed(self.env, exc)
        done = self.env.event()

        def relay(ev: simpy.Event) -> None:
            # A restore can fail after it started (its target host died): hand the error on to the
            # workflow, which reports a rolled-back migration, instead of reading it as a host index.
            if ev.ok:
                done.succeed(f"{instance_id}@{dc.host_ids[ev.value]}")
            else:
                ev.defused = True
                done.fail(ev.value)

        op.event.callbacks.append(relay)
        return SimOperation(done)

    def live_migrate(self, moves: Sequence[Move]) -> Sequence[SimOperation[bool]]:
        """Start live migrations inside each instance's IVN."""
        return self.executor.live_migrate(moves)

    def decommission(self, instance_id: str) -> SimOperation[None]:
        """Remove a replacement (after a rollback) or release a source (after a redirect)."""
        dc = self.dc
        iid, host = split_backend(instance_id)
        i = dc.instance_index[iid]
        dc.advance()
        if host is not None:
            dc.shadow_host[i] = -1
            dc.shadow_weight[i] = 0.0
        dc.busy[i] = False
        dc.invalidate()
        return completed(self.env, None)


__all__ = [
    "SimClock",
    "SimInstanceProvider",
    "SimLoadBalancer",
    "SimMirrorStorePort",
    "SimTelemetry",
    "declared_schedule",
]
