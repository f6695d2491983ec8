"""The twin with CloudSim 3.0.3's bookkeeping (``accounting = "cloudsim"``), for validation runs.

The twin's own physics (:mod:`sim.datacenter`) charges what a real fleet would: memory limits
consolidation, migrations share links, energy is integrated over the whole day. CloudSim's power
package books differently, and its published PlanetLab numbers only come out under its rules. This
module replays them on arrays, event by event, so that a policy in ``policies/`` can be checked against
the reference runs in ``../shared/reference/`` (section numbers below refer to
``cloudsim-planetlab.md``):

* **Timeline (§1.3).** Decision points at 300.1, 600.1, ... (the cloudlets start at 0.1 s; times are
  accumulated ``t += 300`` as CloudSim does), each a datacenter update, then the policy's round,
  then the migrations start. A migration completes ``RAM_MB / (NIC / 16 000)`` seconds later (half
  of a 1 Gbit/s link: ``RAM / 62.5``, §1.5) and that completion is an update too. Events past the
  scenario's duration are not processed.
* **Demand (§1.2).** A VM requests ``u(t) * MIPS`` with ``u`` interpolated linearly inside the
  5-minute trace grid at the event time; RAM and BW requests are 0 after t = 0, so memory only
  limits the initial placement. One utilisation value per VM is pushed into its 30-long history at
  every decision point; the history travels with the VM.
* **Allocation (§1.5).** Per host, in VM-list (arrival) order: requests capped at the PE MIPS; a
  VM migrating in counts 10 %, a VM migrating out gets 0.9 of its request; when the capped requests
  do not fit, every VM gets ``floor(capped * factor)`` (the in/out factors applied as CloudSim does).
  Host utilisation is the allocated sum (a migrating-out VM counted at full request) over capacity.
* **Energy (§1.6).** At every update with ``dt > 0``: ``sum over hosts of
  (P(u_prev) + (P(u_now) - P(u_prev)) / 2) * dt``, 0 W when ``u_prev == 0`` (an idle host is off).
  Without power management (``power_aware = false``, CloudSim's NPA) every host draws ``P(1.0)``.
* **SLA (§1.11).** SLATAH pools, over all hosts, the time a host was active with allocated <
  requested MIPS (a migration target always is: it gets 10 % of the incoming VM's request) over the
  active time; PDM pools, over all VMs, the MIPS shortfall while in migration over the MIPS
  requested. Both read the state left at the end of each event time, as CloudSim's state histories
  keep only the last entry of a time.
* **Initial placement (§1.7).** Power-aware best fit at full MIPS and RAM (the migrating policies'
  ``findHostForVm`` with every host at P(0)), or first fit in host order (DVFS/NPA).

The policy sees a :class:`~policies.fleet.FleetSnapshot` that also carries ``host_cpu_util_last``
and ``instance_list_rank``; :class:`~policies.consolidation_policy.ConsolidationPolicy` with
``cloudsim_quirks = true`` uses them to make CloudSim's decisions. Any other policy runs too: its
moves are carried out with the same bookkeeping.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import Any

import numba
import numpy as np
import pandas as pd

from policies.cloudsim_round import spec_power
from policies.fleet import FleetSnapshot
from policies.ports import Policy
from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario
from sim.adapters import declared_schedule
from sim.datacenter import resample_power
from sim.migration import MIGRATION_COLUMNS
from sim.placement import PlacementError, initial_placement
from sim.results import WORKFLOW_COLUMNS, RunResult
from sim.world import SimulationError

NORMAL = 0
OUT = 1
IN = 2

CLOUDLET_START_S = 0.1
"""Cloudlets are submitted 0.1 s after the VMs (``minTimeBetweenEvents``), so updates fall at k·300 + 0.1."""
HOST_BW_UNITS_PER_BPS = 1e-3
"""CloudSim's host BW 1,000,000 stands for 1 Gbit/s; migrations use ``BW / (2 * 8000)`` MB/s."""
HISTORY_LEN = 30


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _update_hosts(slots, roles, cnt, req, pe, total, util_mips, req_mips, vm_alloc, vm_req, vm_mig):  # type: ignore[no-untyped-def]
    """``HostDynamicWorkload.updateVmsProcessing`` for every host: allocation, host and VM state."""
    vm_alloc[:] = 0.0
    vm_req[:] = 0.0
    vm_mig[:] = False
    for h in range(total.shape[0]):
        a = total[h]
        over = False
        tot = 0.0
        for k in range(cnt[h]):
            v = slots[h, k]
            c = min(req[v], pe[h])
            if roles[h, k] == IN:
                c *= 0.1
            tot += c
            if not over:
                if a >= c:
                    a -= c
                else:
                    over = True
        f = total[h] / tot if over else 1.0
        um = 0.0
        rm = 0.0
        for k in range(cnt[h]):
            v = slots[h, k]
            role = roles[h, k]
            c = min(req[v], pe[h])
            if not over:
                if role == OUT:
                    alloc = c * 0.9
                elif role == IN:
                    alloc = c * 0.1
                else:
                    alloc = c
            else:
                if role == OUT:
                    alloc = math.floor(c * f * 0.9)
                elif role == IN:
                    alloc = math.floor(c * 0.1 * f)
                else:
                    alloc = math.floor(c * f)
            if role != IN:
                vm_alloc[v] = alloc
                vm_req[v] = req[v]
                vm_mig[v] = role == OUT
            if role == OUT:
                alloc /= 0.9
            um += alloc
            rm += req[v]
        util_mips[h] = um
        req_mips[h] = rm


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _remove_completed(slots, roles, cnt, req, host_of):  # type: ignore[no-untyped-def]
    """``PowerDatacenter``'s "remove completed VMs": a VM not in migration that requests 0 MIPS goes.

    ``HostDynamicWorkload.getCompletedVms`` treats a zero request as a finished cloudlet, so a
    PlanetLab VM whose trace reads 0 % at an update leaves the datacenter for the rest of the run.
    Returns how many VMs were removed.
    """
    removed = 0
    for h in range(cnt.shape[0]):
        k = 0
        while k < cnt[h]:
            v = slots[h, k]
            if roles[h, k] == NORMAL and req[v] == 0.0:
                for j in range(k, cnt[h] - 1):
                    slots[h, j] = slots[h, j + 1]
                    roles[h, j] = roles[h, j + 1]
                cnt[h] -= 1
                host_of[v] = -1
                removed += 1
            else:
                k += 1
    return removed


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _frame_energy(power, u_prev, u_now, dt):  # type: ignore[no-untyped-def]
    """``getEnergyLinearInterpolation`` summed over hosts for one frame of ``dt`` seconds."""
    e = 0.0
    for h in range(u_prev.shape[0]):
        if u_prev[h] == 0.0:
            continue
        p0 = spec_power(power[h], u_prev[h])
        p1 = spec_power(power[h], u_now[h])
        e += (p0 + (p1 - p0) / 2) * dt
    return e


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _remove(h, v, role, slots, roles, cnt):  # type: ignore[no-untyped-def]
    n = cnt[h]
    for k in range(n):
        if slots[h, k] == v and (role < 0 or roles[h, k] == role):
            for j in range(k, n - 1):
                slots[h, j] = slots[h, j + 1]
                roles[h, j] = roles[h, j + 1]
            cnt[h] = n - 1
            return True
    return False


@numba.njit(cache=True, error_model="numpy")  # type: ignore[misc]
def _set_role(h, v, role, slots, roles, cnt):  # type: ignore[no-untyped-def]
    for k in range(cnt[h]):
        if slots[h, k] == v and roles[h, k] != IN:
            roles[h, k] = role
            return


class CloudSimAccounting:
    """One run of ``scenario`` under ``policy`` with CloudSim 3.0.3's bookkeeping."""

    def __init__(self, scenario: Scenario, population: InstancePopulation, policy: Policy, rng: np.random.Generator):
        if len(scenario.topology.ivns) != 1:
            raise SimulationError("accounting = 'cloudsim' models one datacenter: give the scenario exactly one IVN")
        if not scenario.idle_hosts_off:
            raise SimulationError("accounting = 'cloudsim' switches idle hosts off (0 W): set idle_hosts_off = true")
        unsupported = [name for name in ("failures", "requests") if getattr(scenario, name).enabled]
        if unsupported:
            raise SimulationError(
                f"accounting = 'cloudsim' replays CloudSim's bookkeeping, which has no {' or '.join(unsupported)}: "
                f"set {', '.join(f'{n}.enabled = false' for n in unsupported)} or use accounting = 'twin'"
            )
        self.scenario = scenario
        self.population = population
        self.declared_events = declared_schedule(scenario, population)
        self.policy = policy
        self.rng = rng
        topo = scenario.topology
        ivn = topo.ivns[0]
        types = {t.name: t for t in topo.host_types}
        seq = ivn.host_type_sequence()
        self.ivn_names = (ivn.name,)
        self.host_ids = tuple(f"{ivn.name}/h{j:05d}" for j in range(len(seq)))
        self.total = np.array([types[t].cpu_mips for t in seq], dtype=np.float64)
        self.pe = np.array([types[t].pe_mips for t in seq], dtype=np.float64)
        self.host_pes = np.array([types[t].pes for t in seq], dtype=np.int64)
        self.host_ram = np.array([types[t].ram_mb * MB for t in seq], dtype=np.float64)
        self.power = np.stack([resample_power(types[t].power_w) for t in seq])
        self.power_max = self.power[:, -1].copy()
        self.nic_units = np.array([types[t].nic_bandwidth_bps * HOST_BW_UNITS_PER_BPS for t in seq])
        pop = population
        self.mips = np.asarray(pop.mips, dtype=np.float64)
        self.ram_mb = np.asarray(pop.ram_bytes, dtype=np.float64) / MB
        cpu = np.asarray(pop.demand.cpu_util, dtype=np.float64)
        if scenario.workload.trace == "planetlab":
            # PlanetLab files hold whole percentages that CloudSim divides by 100.0 in double; the
            # loader keeps float32, so recover the exact doubles (ties in PABFD are decided by them).
            cpu = np.rint(cpu * 100.0) / 100.0
        first = int(scenario.start_offset_s // scenario.step_s)
        self.step = float(scenario.step_s)
        grid = cpu[:, first:]
        self.data = np.concatenate([grid, grid[:, -1:]], axis=1)  # data[n] = data[n-1] (§1.2)
        self._iidx = {x: i for i, x in enumerate(pop.instance_ids)}
        self._hidx = {x: i for i, x in enumerate(self.host_ids)}

    def utilisation(self, t: float) -> np.ndarray:
        """``UtilizationModelPlanetLabInMemory.getUtilization(t)`` for every VM."""
        step = self.step
        if math.fmod(t, step) == 0.0:
            return self.data[:, int(t) // int(step)]
        t1 = math.floor(t / step)
        t2 = math.ceil(t / step)
        u1 = self.data[:, t1]
        u2 = self.data[:, min(t2, self.data.shape[1] - 1)]
        delta = (u2 - u1) / ((t2 - t1) * step)
        return u1 + delta * (t - t1 * step)

    def _place(self) -> np.ndarray:
        """Initial placement at t = 0 (§1.7), every VM at its full MIPS and RAM."""
        n_h, n_v = len(self.total), len(self.mips)
        try:
            return initial_placement(
                self.scenario.initial_placement,
                instance_mips=self.mips,
                instance_ram=self.ram_mb * MB,
                instance_ivn=np.zeros(n_v, dtype=np.int64),
                instance_ids=self.population.instance_ids,
                instance_pes=self.population.pes_or_ones,
                host_pes=self.host_pes,
                host_ivn=np.zeros(n_h, dtype=np.int64),
                host_cap_mips=self.total,
                host_pe_mips=self.pe,
                host_ram=self.host_ram,
                host_power_w=self.power,
            )
        except PlacementError as exc:
            raise SimulationError(str(exc)) from None

    def run(self) -> RunResult:
        """Run the scenario to its duration and collect the frames and summary."""
        wall0 = time.perf_counter()
        sc = self.scenario
        interval = sc.controller.interval_s
        n_rows = max(0, math.floor((sc.duration_s - CLOUDLET_START_S) / interval))
        w = _World(self, self._place(), n_rows)
        pending: list[tuple[float, int, int, int]] = []  # (completion time, sequence, vm, target)
        t_dec = CLOUDLET_START_S + interval
        row = -1
        while True:
            next_c = pending[0][0] if pending else math.inf
            if t_dec <= sc.duration_s and t_dec < next_c and row + 1 < n_rows:
                t = t_dec
                t_dec = t_dec + interval  # accumulated as CloudSim's event times are
                u = self.utilisation(t)
                req = u * self.mips
                w.update(t, req, max(row, 0))
                row += 1
                w.push_history(u)
                plan = self.policy.decide(w.fleet(t, req))
                for move in plan.moves:
                    v = self._instance_index(move.instance_id)
                    target = self._host_index(move.target_host)
                    duration = w.start_migration(v, target, t, str(move.reason), row)
                    if duration is not None:
                        heapq.heappush(pending, (t + duration, len(w.migrations), v, int(target)))  # type: ignore[arg-type]
                w.settle(req)
                w.sample(row)
                continue
            if next_c > sc.duration_s:
                break
            t = next_c
            req = self.utilisation(t) * self.mips
            w.update(t, req, row)
            while pending and pending[0][0] == t:
                _, _, v, target = heapq.heappop(pending)
                w.complete_migration(v, target, row)
            w.settle(req)
            w.remove_completed(req)
        return self._collect(w, row + 1, time.perf_counter() - wall0)

    def _instance_index(self, instance_id: str) -> int:
        return self._iidx[instance_id]

    def _host_index(self, host_id: str | None) -> int | None:
        return None if host_id is None else self._hidx.get(host_id)

    def _collect(self, w: _World, n_rows: int, wall: float) -> RunResult:
        sc = self.scenario
        led = w.ledger
        energy_kwh = float(led.energy_j.sum()) / 3.6e6
        active = float(led.active_host_s.sum())
        requested = float(led.requested_mips_s.sum())
        slatah = float(led.violation_host_s.sum()) / active if active > 0 else 0.0
        pdm = float(led.degraded_mips_s.sum()) / requested if requested > 0 else 0.0
        overall = float(led.unserved_mips_s.sum()) / requested if requested > 0 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            slatah_row = np.where(led.active_host_s > 0, led.violation_host_s / led.active_host_s, 0.0)
        k = slice(0, n_rows)
        timeseries = pd.DataFrame(
            {
                "time_s": led.time_s[k],
                "energy_j": led.energy_j[k],
                "active_hosts": led.active_hosts[k],
                "overloaded_hosts": led.overloaded_hosts[k],
                "mean_active_util": led.mean_active_util[k],
                "active_host_s": led.active_host_s[k],
                "sla_violation_s": led.violation_host_s[k],
                "slatah": slatah_row[k],
                "requested_mips_s": led.requested_mips_s[k],
                "degraded_mips_s": led.degraded_mips_s[k],
                "unserved_mips_s": led.unserved_mips_s[k],
                "migrations_started": led.migrations_started[k],
                "migrations_finished": led.migrations_finished[k],
                "migration_bytes": led.migration_bytes[k],
                "snapshot_bytes": np.zeros(n_rows),
            }
        )
        host_util = pd.DataFrame(led.host_util[k], columns=list(self.host_ids))
        host_util.insert(0, "time_s", led.time_s[k])
        migrations = pd.DataFrame.from_records(w.migrations, columns=list(MIGRATION_COLUMNS))
        counts = np.bincount(np.asarray(w.migrated_vm, dtype=np.int64), minlength=len(self.mips))
        ram_bytes = self.ram_mb * MB
        instances = pd.DataFrame(
            {
                "instance_id": list(self.population.instance_ids),
                "downtime_s": np.zeros(len(self.mips)),
                "migrations": counts,
                "bytes_moved": counts * ram_bytes,
                "snapshots": np.zeros(len(self.mips), dtype=np.int64),
                "initial_host": [self.host_ids[h] for h in w.initial],
                "final_host": [self.host_ids[h] if h >= 0 else "" for h in w.host_of],
            }
        )
        slav = slatah * pdm
        summary: dict[str, Any] = {
            "scenario": sc.name,
            "policy": self.policy.name,
            "seed": sc.seed,
            "accounting": "cloudsim",
            "hosts": len(self.host_ids),
            "instances": len(self.mips),
            "steps": n_rows,
            "duration_s": sc.duration_s,
            "energy_kwh": energy_kwh,
            "slatah": slatah,
            "pdm": pdm,
            "slav": slav,
            "esv": energy_kwh * slav,
            "overall_sla_violation": overall,
            "migrations": len(migrations),
            "migrations_finished": int(led.migrations_finished.sum()),
            "workflow_outcomes": {},
            "bytes_moved": float(led.migration_bytes.sum()),
            "bytes_mirrored": 0.0,
            "mirror_stored_bytes": 0.0,
            "downtime_s": 0.0,
            "mean_active_hosts": float(led.active_hosts[k].mean()) if n_rows else 0.0,
            "vms_removed_at_zero_request": int((w.host_of < 0).sum()),
            "lb_redirects": 0,
            "lb_rollbacks": 0,
            "last_event_s": w.last_t,
            "wall_s": wall,
            "instance_steps_per_s": len(self.mips) * n_rows / wall if wall > 0 else math.inf,
        }
        return RunResult(
            scenario=sc.name,
            policy=self.policy.name,
            seed=sc.seed,
            timeseries=timeseries,
            host_util=host_util,
            migrations=migrations,
            instances=instances,
            summary=summary,
            workflows=pd.DataFrame(columns=list(WORKFLOW_COLUMNS)),
            extra={"energy_frames": pd.DataFrame(w.frames, columns=["time_s", "energy_j"])},
        )


class _Ledger:
    """Per-decision-interval accumulators: row k covers (t_k, t_k+1], as the twin's step rows do."""

    def __init__(self, n_rows: int, n_hosts: int) -> None:
        n = max(n_rows, 1)
        self.time_s = np.zeros(n)
        self.energy_j = np.zeros(n)
        self.active_host_s = np.zeros(n)
        self.violation_host_s = np.zeros(n)
        self.requested_mips_s = np.zeros(n)
        self.degraded_mips_s = np.zeros(n)
        self.unserved_mips_s = np.zeros(n)
        self.migrations_started = np.zeros(n, dtype=np.int64)
        self.migrations_finished = np.zeros(n, dtype=np.int64)
        self.migration_bytes = np.zeros(n)
        self.active_hosts = np.zeros(n, dtype=np.int64)
        self.overloaded_hosts = np.zeros(n, dtype=np.int64)
        self.mean_active_util = np.zeros(n)
        self.host_util = np.zeros((n, n_hosts), dtype=np.float32)


class _World:
    """The mutable state of one CloudSim-accounting run: host VM lists, VM states, the ledger."""

    def __init__(self, acc: CloudSimAccounting, host_of: np.ndarray, n_rows: int) -> None:
        self.acc = acc
        n_h, n_v = len(acc.total), len(acc.mips)
        self.initial = host_of.copy()
        self.host_of = host_of
        self.slots = np.empty((n_h, 2 * n_v + 2), dtype=np.int64)
        self.roles = np.zeros((n_h, 2 * n_v + 2), dtype=np.int8)
        self.cnt = np.zeros(n_h, dtype=np.int64)
        self.rank = np.zeros(n_v, dtype=np.int64)
        for v in range(n_v):  # VMs are created in id order, each appended to its host's list
            h = host_of[v]
            self.slots[h, self.cnt[h]] = v
            self.cnt[h] += 1
            self.rank[v] = v
        self.seq_no = n_v
        self.in_mig = np.zeros(n_v, dtype=np.bool_)
        self.hist = np.full((n_v, HISTORY_LEN), np.nan)  # oldest first, NaN until observed
        self.util_mips = np.zeros(n_h)
        self.req_mips = np.zeros(n_h)
        self.vm_alloc = np.zeros(n_v)
        self.vm_req = np.zeros(n_v)
        self.vm_mig = np.zeros(n_v, dtype=np.bool_)
        # the state left at the end of the last event time: what the next frame integrates
        self.u_prev = np.zeros(n_h)
        self.host_active = np.zeros(n_h, dtype=np.bool_)
        self.host_viol = np.zeros(n_h, dtype=np.bool_)
        self.vm_alloc_prev = np.zeros(n_v)
        self.vm_req_prev = np.zeros(n_v)
        self.vm_mig_prev = np.zeros(n_v, dtype=np.bool_)
        self.have_state = False
        self.last_t = 0.0
        self.frames: list[tuple[float, float]] = []
        self.migrations: list[tuple[Any, ...]] = []
        self.migrated_vm: list[int] = []
        self.ledger = _Ledger(n_rows, n_h)
        self.ivn = acc.ivn_names[0]

    def util_now(self) -> np.ndarray:
        """``getUtilizationOfCpu()`` of every host: allocated over capacity, (1, 1.01) read as 1."""
        u = self.util_mips / self.acc.total
        return np.where((u > 1.0) & (u < 1.01), 1.0, u)

    def _hosts(self, req: np.ndarray) -> None:
        _update_hosts(
            self.slots, self.roles, self.cnt, req, self.acc.pe, self.acc.total,
            self.util_mips, self.req_mips, self.vm_alloc, self.vm_req, self.vm_mig,
        )  # fmt: skip

    def update(self, t: float, req: np.ndarray, row: int) -> None:
        """A datacenter update at ``t``: close the frame since the last one, then recompute hosts."""
        dt = t - self.last_t
        led = self.ledger
        if dt > 0 and self.have_state:
            led.active_host_s[row] += dt * float(self.host_active.sum())
            led.violation_host_s[row] += dt * float((self.host_active & self.host_viol).sum())
            led.requested_mips_s[row] += dt * float(self.vm_req_prev.sum())
            led.unserved_mips_s[row] += dt * float((self.vm_req_prev - self.vm_alloc_prev).sum())
            short = self.vm_mig_prev & (self.vm_alloc_prev < self.vm_req_prev)
            led.degraded_mips_s[row] += dt * float((self.vm_req_prev[short] - self.vm_alloc_prev[short]).sum())
        self._hosts(req)
        if dt > 0:
            if self.acc.scenario.power_aware:
                e = float(_frame_energy(self.acc.power, self.u_prev, self.util_now(), dt))
            else:  # NPA: every host at its 100 % power, idle or not
                e = float(self.acc.power_max.sum()) * dt
            led.energy_j[row] += e
            self.frames.append((t, e))
        self.last_t = t
        self.remove_completed(req)

    def remove_completed(self, req: np.ndarray) -> None:
        """CloudSim drops VMs whose request is 0 after each forced update (see ``_remove_completed``)."""
        _remove_completed(self.slots, self.roles, self.cnt, req, self.host_of)

    def settle(self, req: np.ndarray) -> None:
        """Recompute the state after this event time's changes and keep it for the next frame."""
        self._hosts(req)
        self.u_prev[:] = self.util_now()
        self.host_active[:] = self.util_mips > 0
        self.host_viol[:] = self.util_mips < self.req_mips
        self.vm_alloc_prev[:] = self.vm_alloc
        self.vm_req_prev[:] = self.vm_req
        self.vm_mig_prev[:] = self.vm_mig
        self.have_state = True

    def push_history(self, u: np.ndarray) -> None:
        """``PowerVm``'s utilisation history: one value per VM per decision point, 30 kept."""
        self.hist[:, :-1] = self.hist[:, 1:]
        self.hist[:, -1] = u

    def fleet(self, t: float, req: np.ndarray) -> FleetSnapshot:
        """The policy's view at decision time ``t``."""
        acc = self.acc
        n_h = len(acc.total)
        return FleetSnapshot(
            now_s=t,
            ivn_names=acc.ivn_names,
            host_ids=acc.host_ids,
            host_ivn=np.zeros(n_h, dtype=np.int64),
            host_cpu_capacity_mips=acc.total,
            host_pe_mips=acc.pe,
            host_ram_bytes=acc.host_ram,
            host_power_w=acc.power,
            host_available=np.ones(n_h, dtype=np.bool_),
            instance_ids=acc.population.instance_ids,
            instance_host=self.host_of.copy(),
            instance_cpu_capacity_mips=acc.mips,
            instance_cpu_request_mips=req,
            instance_ram_bytes=acc.ram_mb * MB,
            instance_in_migration=self.in_mig.copy(),
            instance_cpu_history=self.hist.copy(),
            instance_pes=acc.population.pes,
            host_pes=acc.host_pes,
            host_cpu_util_last=self.util_now(),
            instance_list_rank=self.rank.copy(),
            # The history holds one sample per decision point, the newest at ``t``.
            declared_events=acc.declared_events,
            history_step_s=acc.scenario.controller.interval_s,
        )

    def start_migration(self, v: int, target: int | None, t: float, reason: str, row: int) -> float | None:
        """``addMigratingInVm``: reserve ``target`` for VM ``v``; return the migration's duration."""
        source = int(self.host_of[v])
        if target is None or target == source or source < 0:
            return None
        acc = self.acc
        self.in_mig[v] = True
        self.slots[target, self.cnt[target]] = v
        self.roles[target, self.cnt[target]] = IN
        self.cnt[target] += 1
        _set_role(source, v, OUT, self.slots, self.roles, self.cnt)
        duration = float(acc.ram_mb[v] / (acc.nic_units[target] / (2 * 8000)))
        size = float(acc.ram_mb[v] * MB)
        led = self.ledger
        led.migrations_started[row] += 1
        led.migration_bytes[row] += size
        self.migrated_vm.append(v)
        self.migrations.append(
            (
                acc.population.instance_ids[v], acc.host_ids[source], acc.host_ids[target], self.ivn, self.ivn,
                "cloudsim", reason, t, t + duration, size, duration, 0.0, "succeeded", 0.0, 0, True,
            )
        )  # fmt: skip
        return duration

    def complete_migration(self, v: int, target: int, row: int) -> None:
        """``processVmMigrate``: the VM leaves its host and joins the end of the target's list."""
        source = int(self.host_of[v])
        _remove(source, v, -1, self.slots, self.roles, self.cnt)
        _remove(target, v, IN, self.slots, self.roles, self.cnt)
        self.slots[target, self.cnt[target]] = v
        self.roles[target, self.cnt[target]] = NORMAL
        self.cnt[target] += 1
        self.rank[v] = self.seq_no
        self.seq_no += 1
        self.host_of[v] = target
        self.in_mig[v] = False
        self.ledger.migrations_finished[max(row, 0)] += 1

    def sample(self, row: int) -> None:
        """Per-decision state for the timeseries and the host heat map."""
        led = self.ledger
        u = self.util_now()
        on = self.util_mips > 0
        led.time_s[row] = self.last_t
        led.active_hosts[row] = int(on.sum())
        led.overloaded_hosts[row] = int((on & (self.req_mips > self.acc.total)).sum())
        led.mean_active_util[row] = float(u[on].mean()) if on.any() else 0.0
        led.host_util[row] = u


def run_cloudsim_accounting(
    scenario: Scenario, population: InstancePopulation, policy: Policy, *, rng: np.random.Generator
) -> RunResult:
    """Run ``scenario`` with CloudSim 3.0.3's bookkeeping (see the module docstring)."""
    return CloudSimAccounting(scenario, population, policy, rng).run()
