"""The twin's world state as column arrays, and the accounting that integrates it over time.

One :class:`Datacenter` holds every host and instance of every IVN as numpy arrays. Demand changes
at each trace step; placements change when migrations start and finish. Between two such instants
the state is constant, so :meth:`Datacenter.advance` integrates energy, active time, SLA violation
time and migration degradation exactly over the segment, vectorised over all hosts and instances.
Every state change calls ``advance`` first, so accounting is exact to the event.

Quantities follow Beloglazov & Buyya (CCPE 2012), the metrics every consolidation study reports:

* **SLATAH**: share of active-host time during which a host's demand exceeds its capacity;
* **PDM**: CPU lost to migrations (``MIGRATION_DEGRADATION`` of a migrating instance's demand)
  over all CPU demanded;
* **SLAV** = SLATAH x PDM; **ESV** = energy (kWh) x SLAV;
* energy from each host's SPECpower table, linear between the 10 % points; a host with no
  instance and no inbound migration is switched off and draws 0 W (``idle_hosts_off``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import numpy.typing as npt
import simpy

from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario
from sim.network import SharedNetwork
from sim.placement import initial_placement
from sim.requests import RequestAccounting

#: Extra CPU a migration costs on the destination host, as a fraction of the instance's demand
#: (the 10 % of CloudSim's ``VmSchedulerTimeSharedOverSubscription``).
MIGRATION_CPU_OVERHEAD = 0.10
#: Share of a migrating instance's demand it cannot get while it migrates (Voorsluys et al. 2009).
MIGRATION_DEGRADATION = 0.10
#: Number of points the twin resamples every power table to (0 %, 10 %, ..., 100 %).
POWER_POINTS = 11

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class StepSeries:
    """Per-step accumulators, one slot per accounting step, turned into the timeseries frame."""

    n: int
    energy_j: FloatArray = field(init=False)
    active_host_s: FloatArray = field(init=False)
    violation_host_s: FloatArray = field(init=False)
    requested_mips_s: FloatArray = field(init=False)
    degraded_mips_s: FloatArray = field(init=False)
    unserved_mips_s: FloatArray = field(init=False)
    migrations_started: IntArray = field(init=False)
    migrations_finished: IntArray = field(init=False)
    migration_bytes: FloatArray = field(init=False)
    snapshot_bytes: FloatArray = field(init=False)
    active_hosts: IntArray = field(init=False)
    overloaded_hosts: IntArray = field(init=False)
    mean_active_util: FloatArray = field(init=False)
    stored_bytes: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        for name in (
            "energy_j",
            "active_host_s",
            "violation_host_s",
            "requested_mips_s",
            "degraded_mips_s",
            "unserved_mips_s",
            "migration_bytes",
            "snapshot_bytes",
            "mean_active_util",
            "stored_bytes",
        ):
            setattr(self, name, np.zeros(self.n))
        for name in ("migrations_started", "migrations_finished", "active_hosts", "overloaded_hosts"):
            setattr(self, name, np.zeros(self.n, dtype=np.int64))


def resample_power(table: list[float]) -> FloatArray:
    """Power table on 11 evenly spaced points, whatever resolution the spec gave."""
    src = np.linspace(0.0, 1.0, len(table))
    return np.interp(np.linspace(0.0, 1.0, POWER_POINTS), src, np.asarray(table, dtype=np.float64))


class Datacenter:
    """Hosts, instances and links of every IVN, with exact piecewise-constant accounting."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, population: InstancePopulation):
        self.env = env
        self.scenario = scenario
        topo = scenario.topology
        self.ivn_names: tuple[str, ...] = tuple(i.name for i in topo.ivns)

        host_ids: list[str] = []
        host_ivn: list[int] = []
        host_type: list[str] = []
        for k, ivn in enumerate(topo.ivns):
            types = _host_sequence(ivn)
            for j, t in enumerate(types):
                host_ids.append(f"{ivn.name}/h{j:05d}")
                host_ivn.append(k)
                host_type.append(t)
        self.host_ids = tuple(host_ids)
        self.host_index = {h: i for i, h in enumerate(self.host_ids)}
        self.host_type = tuple(host_type)
        self.host_ivn = np.asarray(host_ivn, dtype=np.int64)
        types = {t.name: t for t in topo.host_types}
        self.host_cap = np.array([types[t].cpu_mips for t in host_type])
        self.host_pe_mips = np.array([types[t].pe_mips for t in host_type])
        self.host_pes = np.array([types[t].pes for t in host_type], dtype=np.int64)
        self.host_ram = np.array([types[t].ram_mb * MB for t in host_type])
        self.host_nic_bps = np.array([types[t].nic_bandwidth_bps for t in host_type])
        tables = {name: resample_power(t.power_w) for name, t in types.items()}
        self.host_power_w = np.stack([tables[t] for t in host_type])
        self.host_available = np.ones(len(self.host_ids), dtype=bool)

        # Links: each host's NIC egress and ingress, each IVN's store ingest, then inter-IVN links.
        n_h = len(self.host_ids)
        caps = list(self.host_nic_bps) + list(self.host_nic_bps)
        names = [f"{h}:out" for h in self.host_ids] + [f"{h}:in" for h in self.host_ids]
        self.store_link = np.arange(len(topo.ivns)) + 2 * n_h
        caps += [i.mirror_store_restore_bps for i in topo.ivns]
        names += [f"{i.name}:store" for i in topo.ivns]
        self.ivn_link: dict[tuple[int, int], int] = {}
        for link in topo.links:
            a, b = (self.ivn_names.index(x) for x in link.between)
            self.ivn_link[(a, b)] = self.ivn_link[(b, a)] = len(caps)
            caps.append(link.bandwidth_bps)
            names.append(f"{link.between[0]}<->{link.between[1]}")
        self.network = SharedNetwork(env, caps, names)

        # Instances.
        pop = population
        self.instance_ids = pop.instance_ids
        self.instance_index = {x: i for i, x in enumerate(pop.instance_ids)}
        self.mips = np.asarray(pop.mips, dtype=np.float64)
        self.pes = pop.pes_or_ones
        self.ram = np.asarray(pop.ram_bytes, dtype=np.float64)
        self.state_bytes = np.asarray(pop.state_bytes, dtype=np.float64)
        self.cpu_trace = pop.demand.cpu_util
        self.step_s = scenario.step_s
        self.n_steps = math.ceil(scenario.duration_s / scenario.step_s)
        self.host_of = initial_placement(
            scenario.initial_placement,
            instance_mips=self.mips,
            instance_ram=self.ram,
            instance_ivn=np.asarray(pop.ivn_index, dtype=np.int64),
            instance_ids=pop.instance_ids,
            instance_pes=self.pes,
            host_pes=self.host_pes,
            host_ivn=self.host_ivn,
            host_cap_mips=self.host_cap,
            host_pe_mips=self.host_pe_mips,
            host_ram=self.host_ram,
            host_power_w=self.host_power_w,
            host_overcommit=np.array([topo.ivns[k].cpu_overcommit_ratio for k in self.host_ivn]),
        )
        n_i = len(self.instance_ids)
        self.migrating_to = np.full(n_i, -1, dtype=np.int64)
        self.shadow_host = np.full(n_i, -1, dtype=np.int64)
        self.shadow_weight = np.zeros(n_i)
        self.busy = np.zeros(n_i, dtype=bool)  # inside a cross-IVN workflow
        # Not serving requests: its host failed and no replacement runs yet, or a cold copy /
        # stop-and-copy has it paused. Failures, migrations and the request model share this flag.
        self.instance_down = np.zeros(n_i, dtype=bool)
        self.instance_down_since = np.full(n_i, np.nan)
        self.request = np.zeros(n_i)
        self.rma_overhead_mips = np.zeros(n_i)

        self.step = StepSeries(self.n_steps)
        self.host_util_rows = np.zeros((self.n_steps, n_h), dtype=np.float32)
        self.host_energy_j = np.zeros(n_h)
        self.instance_downtime_s = np.zeros(n_i)
        self.instance_migrations = np.zeros(n_i, dtype=np.int64)
        self.instance_bytes_moved = np.zeros(n_i)
        self.k = 0  # current accounting step
        self._last_s = 0.0
        self._load_cache: FloatArray | None = None
        self._presence = np.zeros(n_h, dtype=np.int64)
        self._request_total = 0.0
        self._migrating_request = 0.0
        self.migration_rows: list[tuple] = []  # filled by the migration executor
        # What changed since the request model last looked (sim/requests.py), so a segment costs it
        # O(changes), not O(instances): anything at all (every invalidate), or a few instances and
        # the hosts whose load their change moved (the delta updates below, :meth:`note_changed`).
        self.changed_all = True
        self.changed_instances: list[int] = []
        self.changed_hosts: list[int] = []
        # Request model (sim/requests.py), only when the scenario enables it: None keeps runs unchanged.
        self.requests: RequestAccounting | None = (
            RequestAccounting(self, scenario.requests, migration_degradation=MIGRATION_DEGRADATION)
            if scenario.requests.enabled
            else None
        )

    # --- state ----------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget derived arrays after any change of placement, demand or traffic split."""
        self._load_cache = None
        self.changed_all = True

    def note_changed(self, i: int, *hosts: int) -> None:
        """Record a change of instance ``i``'s serving state made without :meth:`invalidate`.

        Down, moving or a failing replacement, plus the hosts whose load the change moved; the request
        model reads these instead of rescanning every instance.
        """
        if self.requests is not None:
            self.changed_instances.append(i)
            self.changed_hosts.extend(hosts)

    def _derive(self) -> FloatArray:
        """Recompute host load, host presence counts and the demand totals from the state arrays."""
        n_h = len(self.host_ids)
        placed = self.host_of >= 0
        share = self.request * (1.0 - self.shadow_weight) + self.rma_overhead_mips
        load = np.bincount(self.host_of[placed], weights=share[placed], minlength=n_h)
        presence = np.bincount(self.host_of[placed], minlength=n_h)
        sh = self.shadow_host >= 0
        if sh.any():
            load += np.bincount(self.shadow_host[sh], weights=self.request[sh] * self.shadow_weight[sh], minlength=n_h)
            presence += np.bincount(self.shadow_host[sh], minlength=n_h)
        mig = self.migrating_to >= 0
        if mig.any():
            load += np.bincount(
                self.migrating_to[mig], weights=self.request[mig] * MIGRATION_CPU_OVERHEAD, minlength=n_h
            )
            presence += np.bincount(self.migrating_to[mig], minlength=n_h)
        self._presence = presence
        self._request_total = float(self.request.sum())
        self._migrating_request = float(self.request[mig | self.busy].sum())
        self._load_cache = load
        return load

    def host_load_mips(self) -> FloatArray:
        """CPU demanded on each host now (MIPS): its instances, replacements, migration and RMA overhead."""
        if self._load_cache is not None:
            return self._load_cache
        return self._derive()

    def host_powered(self) -> npt.NDArray[np.bool_]:
        """Hosts that are switched on: they run, receive or mirror an instance (or all, if not idle-off)."""
        if not self.scenario.idle_hosts_off:
            return self.host_available.copy()
        self.host_load_mips()
        return (self._presence > 0) & self.host_available

    def begin_live_migration(self, i: int, h: int) -> None:
        """Reserve host ``h`` for instance ``i``; updates the derived arrays in place (no recompute).

        A consolidation round can start thousands of migrations; recomputing every host's load for
        each would dominate the run, so the change is applied as a delta.
        """
        load = self.host_load_mips()
        self.migrating_to[i] = h
        load[h] += self.request[i] * MIGRATION_CPU_OVERHEAD
        self._presence[h] += 1
        if not self.busy[i]:
            self._migrating_request += float(self.request[i])
        self.note_changed(i, h)

    def complete_live_migration(self, i: int, h: int) -> None:
        """Instance ``i`` now runs on ``h``; its source is released (delta update, like the start)."""
        load = self.host_load_mips()
        src = int(self.host_of[i])
        share = self.request[i] * (1.0 - self.shadow_weight[i]) + self.rma_overhead_mips[i]
        load[src] -= share
        load[h] += share - self.request[i] * MIGRATION_CPU_OVERHEAD
        self._presence[src] -= 1
        self.host_of[i] = h
        self.migrating_to[i] = -1
        if not self.busy[i]:
            self._migrating_request -= float(self.request[i])
        self.note_changed(i, src, h)

    def set_demand(self, k: int) -> None:
        """Take instance demand from trace step ``k`` (clamped to the trace's last step)."""
        col = min(k, self.cpu_trace.shape[1] - 1)
        self.request = self.cpu_trace[:, col].astype(np.float64) * self.mips
        self.invalidate()

    # --- accounting -----------------------------------------------------------------------------
    def advance(self) -> None:
        """Integrate every accumulator from the last call up to ``env.now`` with the current state."""
        now = self.env.now
        dt = now - self._last_s
        if dt <= 0:
            return
        self._last_s = now
        k = min(self.k, self.n_steps - 1)
        load = self.host_load_mips()
        energy_w, on_n, over_n, unserved = _integrate_hosts(
            dt,
            load,
            self.host_cap,
            self._presence,
            self.host_available,
            bool(self.scenario.idle_hosts_off),
            bool(self.scenario.power_aware),
            self.host_power_w,
            self.host_energy_j,
        )
        s = self.step
        s.energy_j[k] += energy_w * dt
        s.active_host_s[k] += on_n * dt
        s.violation_host_s[k] += over_n * dt
        s.unserved_mips_s[k] += unserved * dt
        s.requested_mips_s[k] += self._request_total * dt
        s.degraded_mips_s[k] += self._migrating_request * MIGRATION_DEGRADATION * dt
        if self.requests is not None:
            self.requests.accumulate(dt, k)

    def record_step_state(self, k: int) -> None:
        """Store host utilisation and host counts at the start of step ``k`` (after demand changes)."""
        load = self.host_load_mips()
        on = self.host_powered()
        util = load / self.host_cap
        self.host_util_rows[k] = util
        s = self.step
        s.active_hosts[k] = int(on.sum())
        s.overloaded_hosts[k] = int((on & (util > 1.0)).sum())
        s.mean_active_util[k] = float(util[on].mean()) if on.any() else 0.0


@numba.njit(cache=True)  # type: ignore[misc]
def _integrate_hosts(  # type: ignore[no-untyped-def]
    dt, load, host_cap, presence, available, idle_hosts_off, power_aware, power_w, host_energy_j
):
    """One segment of host accounting in a single pass over the hosts (it runs at every segment).

    A host is on when it is available and (if idle hosts are switched off) runs, receives or
    mirrors an instance. A power-aware datacenter draws the interpolated SPECpower figure of an on
    host (utilisation clipped to [0, 1]); otherwise every available host draws its 100 % figure.
    Adds each host's energy over ``dt`` to ``host_energy_j`` and returns the total power (W), the
    number of hosts on, the number of on hosts over capacity and the MIPS they cannot serve.
    """
    last = power_w.shape[1] - 1
    total_w = 0.0
    on_n = 0
    over_n = 0
    unserved = 0.0
    for h in range(load.shape[0]):
        on = available[h] and (presence[h] > 0 or not idle_hosts_off)
        if power_aware:
            w = 0.0
            if on:
                u = min(max(load[h] / host_cap[h], 0.0), 1.0) * last
                lo = int(np.floor(u))
                hi = min(lo + 1, last)
                w = power_w[h, lo] + (power_w[h, hi] - power_w[h, lo]) * (u - lo)
        else:
            w = power_w[h, last] if available[h] else 0.0
        host_energy_j[h] += w * dt
        total_w += w
        if on:
            on_n += 1
            if load[h] > host_cap[h] * (1 + 1e-12):
                over_n += 1
            if load[h] > host_cap[h]:
                unserved += load[h] - host_cap[h]
    return total_w, on_n, over_n, unserved


def _host_sequence(ivn: object) -> list[str]:
    """Host type of each host of an IVN, numbered grouped or interleaved as the spec asks."""
    groups = [(g.type, g.count) for g in ivn.hosts]  # type: ignore[attr-defined]
    order = getattr(ivn, "host_order", "grouped")
    if order != "interleaved":
        return [t for t, c in groups for _ in range(c)]
    out: list[str] = []
    left = [c for _, c in groups]
    while any(left):
        for j, (t, _) in enumerate(groups):
            if left[j]:
                out.append(t)
                left[j] -= 1
    return out
