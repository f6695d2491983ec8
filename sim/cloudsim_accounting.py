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
from sim.placement import PlacementError, initial_placement
from sim.results import RunResult
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
        self.scenario = scenario
        self.population = population
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
        self.power = np.stack([_eleven_points(types[t].power_w) for t in seq])
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

    def run(self) -> RunResult:
        """Run the scenario to its duration and collect the frames and summary."""
        wall0 = time.perf_counter()
        sc = self.scenario
        n_h, n_v = len(self.total), len(self.mips)
        ram_bytes = self.ram_mb * MB
        try:
            host_of = initial_placement(
                sc.initial_placement,
                instance_mips=self.mips,
                instance_ram=ram_bytes,
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
        initial = host_of.copy()
        cap = 2 * n_v + 2
        slots = np.empty((n_h, cap), dtype=np.int64)
        roles = np.zeros((n_h, cap), dtype=np.int8)
        cnt = np.zeros(n_h, dtype=np.int64)
        rank = np.zeros(n_v, dtype=np.int64)
        seq_no = 0
        for v in range(n_v):
            h = host_of[v]
            slots[h, cnt[h]] = v
            cnt[h] += 1
            rank[v] = seq_no
            seq_no += 1
        in_mig = np.zeros(n_v, dtype=np.bool_)
        hist = np.full((n_v, HISTORY_LEN), np.nan)  # oldest first, NaN until observed
        hist_len = 0

        util_mips = np.zeros(n_h)
        req_mips = np.zeros(n_h)
        vm_alloc = np.zeros(n_v)
        vm_req = np.zeros(n_v)
        vm_mig = np.zeros(n_v, dtype=np.bool_)
        u_prev = np.zeros(n_h)  # utilisation at the end of the last event time
        host_active = np.zeros(n_h, dtype=np.bool_)
        host_viol = np.zeros(n_h, dtype=np.bool_)
        vm_alloc_prev = np.zeros(n_v)
        vm_req_prev = np.zeros(n_v)
        vm_mig_prev = np.zeros(n_v, dtype=np.bool_)
        have_state = False
        power_aware = sc.power_aware

        t_active = t_viol = 0.0
        req_total = alloc_total = degraded = 0.0
        energy = 0.0
        last_t = 0.0
        frames: list[tuple[float, float]] = []
        migrations: list[tuple[float, float, str, str, str, str]] = []
        decisions: list[dict[str, Any]] = []
        pending: list[tuple[float, int, int, int]] = []
        mig_seq = 0
        limit = sc.duration_s
        t_dec = CLOUDLET_START_S + sc.controller.interval_s
        interval = sc.controller.interval_s

        def util_now() -> np.ndarray:
            u = util_mips / self.total
            return np.where((u > 1.0) & (u < 1.01), 1.0, u)

        def update(t: float, req: np.ndarray) -> None:
            nonlocal energy, last_t, t_active, t_viol, req_total, alloc_total, degraded
            dt = t - last_t
            if dt > 0 and have_state:
                t_active += dt * float(host_active.sum())
                t_viol += dt * float((host_active & host_viol).sum())
                req_total += dt * float(vm_req_prev.sum())
                alloc_total += dt * float(vm_alloc_prev.sum())
                short = vm_mig_prev & (vm_alloc_prev < vm_req_prev)
                degraded += dt * float((vm_req_prev[short] - vm_alloc_prev[short]).sum())
            _update_hosts(slots, roles, cnt, req, self.pe, self.total, util_mips, req_mips, vm_alloc, vm_req, vm_mig)
            if dt > 0:
                if power_aware:
                    e = _frame_energy(self.power, u_prev, util_now(), dt)
                else:
                    e = float(self.power_max.sum()) * dt
                energy += e
                frames.append((t, e))
            last_t = t
            _remove_completed(slots, roles, cnt, req, host_of)

        def settle(req: np.ndarray) -> None:
            """Recompute the state after this event time's changes and keep it for the next frame."""
            nonlocal have_state
            _update_hosts(slots, roles, cnt, req, self.pe, self.total, util_mips, req_mips, vm_alloc, vm_req, vm_mig)
            u_prev[:] = util_now()
            host_active[:] = util_mips > 0
            host_viol[:] = util_mips < req_mips
            vm_alloc_prev[:] = vm_alloc
            vm_req_prev[:] = vm_req
            vm_mig_prev[:] = vm_mig
            have_state = True

        while True:
            next_c = pending[0][0] if pending else math.inf
            if t_dec <= limit and t_dec < next_c:
                t = t_dec
                t_dec = t_dec + interval
                u = self.utilisation(t)
                req = u * self.mips
                update(t, req)
                hist[:, :-1] = hist[:, 1:]
                hist[:, -1] = u
                hist_len = min(hist_len + 1, HISTORY_LEN)
                host_of_now = host_of.copy()
                fleet = FleetSnapshot(
                    now_s=t,
                    ivn_names=self.ivn_names,
                    host_ids=self.host_ids,
                    host_ivn=np.zeros(n_h, dtype=np.int64),
                    host_cpu_capacity_mips=self.total,
                    host_pe_mips=self.pe,
                    host_ram_bytes=self.host_ram,
                    host_power_w=self.power,
                    host_available=np.ones(n_h, dtype=np.bool_),
                    instance_ids=self.population.instance_ids,
                    instance_host=host_of_now,
                    instance_cpu_capacity_mips=self.mips,
                    instance_cpu_request_mips=req,
                    instance_ram_bytes=ram_bytes,
                    instance_in_migration=in_mig.copy(),
                    instance_cpu_history=hist.copy(),
                    instance_pes=self.population.pes,
                    host_pes=self.host_pes,
                    host_cpu_util_last=util_now(),
                    instance_list_rank=rank.copy(),
                )
                plan = self.policy.decide(fleet)
                started = 0
                for move in plan.moves:
                    v = self._instance_index(move.instance_id)
                    target = self._host_index(move.target_host)
                    source = int(host_of[v])
                    if target is None or target == source or source < 0:
                        continue
                    in_mig[v] = True
                    slots[target, cnt[target]] = v
                    roles[target, cnt[target]] = IN
                    cnt[target] += 1
                    _set_role(source, v, OUT, slots, roles, cnt)
                    duration = self.ram_mb[v] / (self.nic_units[target] / (2 * 8000))
                    heapq.heappush(pending, (t + duration, mig_seq, v, target))
                    mig_seq += 1
                    started += 1
                    ids = (self.population.instance_ids[v], self.host_ids[source], self.host_ids[target])
                    migrations.append((t, t + duration, *ids, str(move.reason)))
                settle(req)
                decisions.append(
                    {
                        "time_s": t,
                        "active_hosts": int((util_mips > 0).sum()),
                        "migrations_started": started,
                    }
                )
                continue
            if next_c > limit:
                break
            t = next_c
            req = self.utilisation(t) * self.mips
            update(t, req)
            while pending and pending[0][0] == t:
                _, _, v, target = heapq.heappop(pending)
                source = int(host_of[v])
                _remove(source, v, -1, slots, roles, cnt)
                _remove(target, v, IN, slots, roles, cnt)
                slots[target, cnt[target]] = v
                roles[target, cnt[target]] = NORMAL
                cnt[target] += 1
                rank[v] = seq_no
                seq_no += 1
                host_of[v] = target
                in_mig[v] = False
            settle(req)
            _remove_completed(slots, roles, cnt, req, host_of)

        wall = time.perf_counter() - wall0
        return self._collect(
            energy=energy,
            t_active=t_active,
            t_viol=t_viol,
            req_total=req_total,
            alloc_total=alloc_total,
            degraded=degraded,
            frames=frames,
            migrations=migrations,
            decisions=decisions,
            initial=initial,
            final=host_of,
            wall=wall,
        )

    def _instance_index(self, instance_id: str) -> int:
        if not hasattr(self, "_iidx"):
            self._iidx = {x: i for i, x in enumerate(self.population.instance_ids)}
        return self._iidx[instance_id]

    def _host_index(self, host_id: str | None) -> int | None:
        if host_id is None:
            return None
        if not hasattr(self, "_hidx"):
            self._hidx = {x: i for i, x in enumerate(self.host_ids)}
        return self._hidx.get(host_id)

    def _collect(self, **k: Any) -> RunResult:
        sc = self.scenario
        energy_kwh = k["energy"] / 3.6e6
        slatah = k["t_viol"] / k["t_active"] if k["t_active"] > 0 else 0.0
        pdm = k["degraded"] / k["req_total"] if k["req_total"] > 0 else 0.0
        overall = (k["req_total"] - k["alloc_total"]) / k["req_total"] if k["req_total"] > 0 else 0.0
        frames = pd.DataFrame(k["frames"], columns=["time_s", "energy_j"])
        decisions = pd.DataFrame(k["decisions"], columns=["time_s", "active_hosts", "migrations_started"])
        # energy of decision interval k: the frames ending in (t_k, t_k+1]
        times = decisions["time_s"].to_numpy()
        owner = np.clip(np.searchsorted(times, frames["time_s"].to_numpy(), side="left") - 1, 0, None)
        decisions["energy_j"] = np.bincount(owner, weights=frames["energy_j"].to_numpy(), minlength=len(times))[
            : len(times)
        ]
        migrations = pd.DataFrame(
            k["migrations"], columns=["start_s", "end_s", "instance_id", "source_host", "target_host", "reason"]
        )
        instances = pd.DataFrame(
            {
                "instance_id": list(self.population.instance_ids),
                "initial_host": [self.host_ids[h] for h in k["initial"]],
                "final_host": [self.host_ids[h] if h >= 0 else "" for h in k["final"]],
                "migrations": np.bincount(
                    [self._instance_index(x) for x in migrations["instance_id"]], minlength=len(self.mips)
                ),
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
            "steps": len(decisions),
            "duration_s": sc.duration_s,
            "energy_kwh": energy_kwh,
            "slatah": slatah,
            "pdm": pdm,
            "slav": slav,
            "esv": energy_kwh * slav,
            "overall_sla_violation": overall,
            "migrations": len(migrations),
            "last_event_s": float(frames["time_s"].iloc[-1]) if len(frames) else 0.0,
            "wall_s": k["wall"],
        }
        host_util = pd.DataFrame({"time_s": decisions["time_s"]})
        return RunResult(
            scenario=sc.name,
            policy=self.policy.name,
            seed=sc.seed,
            timeseries=decisions,
            host_util=host_util,
            migrations=migrations,
            instances=instances,
            summary=summary,
            extra={"energy_frames": frames},
        )


def _eleven_points(table: list[float]) -> np.ndarray:
    src = np.linspace(0.0, 1.0, len(table))
    return np.interp(np.linspace(0.0, 1.0, 11), src, np.asarray(table, dtype=np.float64))


def run_cloudsim_accounting(
    scenario: Scenario, population: InstancePopulation, policy: Policy, *, rng: np.random.Generator
) -> RunResult:
    """Run ``scenario`` with CloudSim 3.0.3's bookkeeping (see the module docstring)."""
    return CloudSimAccounting(scenario, population, policy, rng).run()
