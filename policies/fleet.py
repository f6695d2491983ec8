"""The fleet as a policy sees it at one decision point: plain numpy arrays, no objects per instance.

Policies work on thousands of instances each control tick, so the telemetry port hands them one
:class:`FleetSnapshot` of column arrays (hosts x attributes, instances x attributes, instances x
history) instead of per-object calls. Both worlds build it: the twin from its state arrays, the live
controller from RMA samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policies.scheduled_events import ScheduledEvent

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Read-only view of hosts and instances at ``now_s``.

    Host arrays have one entry per host, instance arrays one per instance; ``instance_host`` indexes
    into the host arrays (``-1`` when an instance is not placed), ``host_ivn`` into ``ivn_names``.

    Attributes:
        now_s: Time of the view (s).
        ivn_names: Names of the isolated virtual networks.
        host_ids: Host identifiers.
        host_ivn: IVN index of each host.
        host_cpu_capacity_mips: Total CPU capacity of each host (MIPS).
        host_pe_mips: Capacity of one processing element; a single-PE instance can't get more.
        host_ram_bytes: Memory of each host.
        host_power_w: SPECpower-style table, power (W) at 0 %, 10 %, ..., 100 % utilisation.
        host_available: False for failed or drained hosts, and for hosts with instances still
            arriving (their booked load is not in these arrays yet); policies must not target or
            evacuate them.
        instance_ids: Instance identifiers.
        instance_host: Host index of each instance.
        instance_cpu_capacity_mips: The instance's provisioned CPU (MIPS).
        instance_cpu_request_mips: CPU it asks for now (MIPS).
        instance_ram_bytes: Memory it occupies on its host (also its state size for migration cost).
        instance_in_migration: True while a migration of the instance is in progress.
        instance_cpu_history: Past utilisation as a fraction of the instance's capacity, shape
            (instances, H), oldest first and newest last; NaN where not yet observed.
        instance_allowed_ivns: Optional boolean matrix (instances, IVNs) of permitted targets.
        instance_pes: Processing elements (vCPUs) of each instance; ``None`` means one each. An
            instance's demand is spread over its PEs, so it fits a host only if
            ``request / pes <= host_pe_mips`` and ``pes <= host_pes``.
        host_pes: Processing elements of each host; ``None`` means unlimited (only MIPS count).
        host_cpu_util_last: Utilisation each host had at its last accounting update, as allocated
            (not requested) MIPS over capacity. Only a world that books like CloudSim provides it
            (``accounting = "cloudsim"``); CloudSim's PABFD and under-load step read it.
        instance_list_rank: Order of instances in their host's VM list (smaller = earlier); CloudSim
            breaks VM-selection ties by it. Provided with ``host_cpu_util_last``.
        host_health: Health readings per host (metric name -> array over hosts, e.g.
            ``memory_errors`` and ``disk_io_errors`` per sampling interval; NaN for a failed host),
            when the world monitors host health.
        instance_mirror_ivn: IVN index whose Mirror Store holds each instance's latest complete
            snapshot, ``-1`` when it has none (mirroring off or nothing stored yet).
        instance_mirror_age_s: Age of that snapshot (s); ``inf`` when there is none.
        ivn_cost_per_gb_hour: Price of hosting one GB of instance memory for an hour in each IVN
            (``None``: all free).
        declared_events: The scheduled events the operator has declared (window, expected
            multiplier, instances concerned), in the clock of ``now_s``. Only the declaration: what an
            event really does to demand is never part of the view.
        history_step_s: Time between two columns of ``instance_cpu_history`` (the newest column is
            at ``now_s``); ``None`` when the world does not say. Needed to put declared events and
            calendar features on the history's grid.
    """

    now_s: float
    ivn_names: tuple[str, ...]
    host_ids: tuple[str, ...]
    host_ivn: IntArray
    host_cpu_capacity_mips: FloatArray
    host_pe_mips: FloatArray
    host_ram_bytes: FloatArray
    host_power_w: FloatArray
    host_available: BoolArray
    instance_ids: tuple[str, ...]
    instance_host: IntArray
    instance_cpu_capacity_mips: FloatArray
    instance_cpu_request_mips: FloatArray
    instance_ram_bytes: FloatArray
    instance_in_migration: BoolArray
    instance_cpu_history: FloatArray
    instance_allowed_ivns: BoolArray | None = None
    instance_pes: IntArray | None = None
    host_pes: IntArray | None = None
    host_cpu_util_last: FloatArray | None = None
    instance_list_rank: IntArray | None = None
    host_health: Mapping[str, FloatArray] | None = None
    instance_mirror_ivn: IntArray | None = None
    instance_mirror_age_s: FloatArray | None = None
    ivn_cost_per_gb_hour: FloatArray | None = None
    declared_events: tuple[ScheduledEvent, ...] = ()
    history_step_s: float | None = None

    @property
    def n_hosts(self) -> int:
        """Number of hosts."""
        return len(self.host_ids)

    @property
    def n_instances(self) -> int:
        """Number of instances."""
        return len(self.instance_ids)

    def host_request_mips(self) -> FloatArray:
        """Total CPU requested on each host by the instances placed on it (MIPS, uncapped)."""
        placed = self.instance_host >= 0
        return np.bincount(
            self.instance_host[placed],
            weights=self.instance_cpu_request_mips[placed],
            minlength=self.n_hosts,
        ).astype(np.float64)

    def host_cpu_util(self) -> FloatArray:
        """Return requested CPU over capacity per host; may exceed 1 when a host is overcommitted."""
        return self.host_request_mips() / self.host_cpu_capacity_mips

    def host_ram_used_bytes(self) -> FloatArray:
        """Memory taken on each host by its instances."""
        placed = self.instance_host >= 0
        return np.bincount(
            self.instance_host[placed], weights=self.instance_ram_bytes[placed], minlength=self.n_hosts
        ).astype(np.float64)

    def host_util_history(self) -> FloatArray:
        """Utilisation history of each host as the sum of its current instances' histories.

        This is how CloudSim's ``PowerHostUtilizationHistory`` defines it: the history follows the
        instances, so a host that just received an instance inherits that instance's past. Shape
        (hosts, H), oldest first; NaN where none of a host's instances has a sample.
        """
        hist = self.instance_cpu_history
        n_hist = hist.shape[1]
        placed = self.instance_host >= 0
        mips = hist[placed] * self.instance_cpu_capacity_mips[placed, None]
        observed = ~np.isnan(mips)
        out = np.zeros((self.n_hosts, n_hist))
        seen = np.zeros((self.n_hosts, n_hist), dtype=np.int64)
        np.add.at(out, self.instance_host[placed], np.where(observed, mips, 0.0))
        np.add.at(seen, self.instance_host[placed], observed.astype(np.int64))
        out /= self.host_cpu_capacity_mips[:, None]
        out[seen == 0] = np.nan
        return out

    def host_power_at(self, util: FloatArray) -> FloatArray:
        """Power (W) of every host at the given utilisation, by linear interpolation of its table."""
        return power_at(self.host_power_w, util)


def power_at(table_w: FloatArray, util: FloatArray) -> FloatArray:
    """Interpolate SPECpower tables (hosts x 11 points) at per-host utilisation ``util``.

    Utilisation is clipped to [0, 1]: a host cannot draw more than its 100 % figure.
    """
    u = np.clip(util, 0.0, 1.0) * (table_w.shape[1] - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, table_w.shape[1] - 1)
    rows = np.arange(table_w.shape[0])
    p_lo = table_w[rows, lo]
    return p_lo + (table_w[rows, hi] - p_lo) * (u - lo)
