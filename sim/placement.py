"""Initial placement of instances at t = 0: power-aware best fit decreasing over each IVN's hosts.

The scenario says where instances *start*; which host inside their IVN is decided here, once, the
way CloudSim's power-aware allocation does it: instances in order, each on the host whose power draw
rises least when it is added (ties to the lowest host index), counting every instance at its full
provisioned CPU, and respecting per-PE capacity (an instance with ``p`` vCPUs needs ``p`` host PEs
each at least ``mips / p`` fast) and memory. With all hosts idle this spreads the
instances, which is what the consolidation policies then start from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from policies.fleet import power_at


class PlacementError(Exception):
    """Instances do not fit on the hosts the scenario gives them. ``str()`` is the user message."""


def power_aware_initial_placement(
    *,
    instance_mips: npt.NDArray[np.float64],
    instance_ram: npt.NDArray[np.float64],
    instance_ivn: npt.NDArray[np.int64],
    instance_ids: tuple[str, ...],
    instance_pes: npt.NDArray[np.int64],
    host_pes: npt.NDArray[np.int64],
    host_ivn: npt.NDArray[np.int64],
    host_cap_mips: npt.NDArray[np.float64],
    host_pe_mips: npt.NDArray[np.float64],
    host_ram: npt.NDArray[np.float64],
    host_power_w: npt.NDArray[np.float64],
    host_overcommit: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.int64]:
    """Return the host index of every instance; raise :class:`PlacementError` if one cannot fit.

    ``host_overcommit`` lets a host book provisioned MIPS up to that multiple of its capacity (an
    IVN's ``cpu_overcommit_ratio``): business fleets provision more vCPUs than they have cores.
    """
    n_hosts = len(host_ivn)
    overcommit = np.ones(n_hosts) if host_overcommit is None else host_overcommit
    used_mips = np.zeros(n_hosts)
    used_ram = np.zeros(n_hosts)
    placement = np.full(len(instance_mips), -1, dtype=np.int64)
    base_power = power_at(host_power_w, np.zeros(n_hosts))
    for ivn in np.unique(instance_ivn):
        hosts = np.flatnonzero(host_ivn == ivn)
        cap = host_cap_mips[hosts] * overcommit[hosts]
        table = host_power_w[hosts]
        for i in np.flatnonzero(instance_ivn == ivn):
            need = instance_mips[i]
            fits = (
                (host_pe_mips[hosts] >= need / instance_pes[i])
                & (host_pes[hosts] >= instance_pes[i])
                & (used_mips[hosts] + need <= cap + 1e-9)
                & (used_ram[hosts] + instance_ram[i] <= host_ram[hosts] + 1e-9)
            )
            if not fits.any():
                raise PlacementError(
                    f"instance {instance_ids[i]} ({need:.0f} MIPS, {instance_ram[i] / 1e6:.0f} MB) fits on no host "
                    f"of its IVN at t=0: add hosts or larger host types to the scenario's topology"
                )
            cand = hosts[fits]
            u_after = np.minimum((used_mips[cand] + need) / host_cap_mips[cand], 1.0)
            delta = power_at(table[fits], u_after) - base_power[cand]
            h = int(cand[int(np.argmin(delta))])
            placement[i] = h
            used_mips[h] += need
            used_ram[h] += instance_ram[i]
    return placement


def first_fit_initial_placement(
    *,
    instance_mips: npt.NDArray[np.float64],
    instance_ram: npt.NDArray[np.float64],
    instance_ivn: npt.NDArray[np.int64],
    instance_ids: tuple[str, ...],
    instance_pes: npt.NDArray[np.int64],
    host_pes: npt.NDArray[np.int64],
    host_ivn: npt.NDArray[np.int64],
    host_cap_mips: npt.NDArray[np.float64],
    host_pe_mips: npt.NDArray[np.float64],
    host_ram: npt.NDArray[np.float64],
    host_overcommit: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.int64]:
    """Each instance, in order, on the first host of its IVN (by index) where it fits at full MIPS.

    CloudSim's non-migrating baselines (DVFS, NPA) place this way
    (``PowerVmAllocationPolicyAbstract.findHostForVm``), which packs hosts instead of spreading.
    """
    n_hosts = len(host_ivn)
    overcommit = np.ones(n_hosts) if host_overcommit is None else host_overcommit
    cap = host_cap_mips * overcommit
    used_mips = np.zeros(n_hosts)
    used_ram = np.zeros(n_hosts)
    placement = np.full(len(instance_mips), -1, dtype=np.int64)
    for i in range(len(instance_mips)):
        need = instance_mips[i]
        fits = np.flatnonzero(
            (host_ivn == instance_ivn[i])
            & (host_pe_mips >= need / instance_pes[i])
            & (host_pes >= instance_pes[i])
            & (used_mips + need <= cap + 1e-9)
            & (used_ram + instance_ram[i] <= host_ram + 1e-9)
        )
        if not fits.size:
            raise PlacementError(
                f"instance {instance_ids[i]} ({need:.0f} MIPS, {instance_ram[i] / 1e6:.0f} MB) fits on no host "
                f"of its IVN at t=0: add hosts or larger host types to the scenario's topology"
            )
        h = int(fits[0])
        placement[i] = h
        used_mips[h] += need
        used_ram[h] += instance_ram[i]
    return placement


def initial_placement(
    kind: str,
    *,
    instance_mips: npt.NDArray[np.float64],
    instance_ram: npt.NDArray[np.float64],
    instance_ivn: npt.NDArray[np.int64],
    instance_ids: tuple[str, ...],
    instance_pes: npt.NDArray[np.int64],
    host_pes: npt.NDArray[np.int64],
    host_ivn: npt.NDArray[np.int64],
    host_cap_mips: npt.NDArray[np.float64],
    host_pe_mips: npt.NDArray[np.float64],
    host_ram: npt.NDArray[np.float64],
    host_power_w: npt.NDArray[np.float64],
    host_overcommit: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.int64]:
    """Place every instance at t = 0 the way the scenario's ``initial_placement`` names."""
    common = {
        "instance_mips": instance_mips,
        "instance_ram": instance_ram,
        "instance_ivn": instance_ivn,
        "instance_ids": instance_ids,
        "instance_pes": instance_pes,
        "host_pes": host_pes,
        "host_ivn": host_ivn,
        "host_cap_mips": host_cap_mips,
        "host_pe_mips": host_pe_mips,
        "host_ram": host_ram,
        "host_overcommit": host_overcommit,
    }
    if kind == "first_fit":
        return first_fit_initial_placement(**common)
    return power_aware_initial_placement(**common, host_power_w=host_power_w)
