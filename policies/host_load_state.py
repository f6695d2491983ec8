"""Working copies of host load while a policy builds a plan, so planned moves affect later ones.

A consolidation round places many instances one after another. Each placement must see the load and
memory that earlier placements of the same round already committed, otherwise two instances can both
be put into the last free slot of one host. :class:`HostLoadState` holds those working copies as
numpy arrays over all hosts; the per-placement questions ("which hosts fit this instance?",
"what would their power be?") are single vectorised expressions over it.

Placement runs once per planned move, so its constant factor matters: the arrays that the
expressions need (power-table row offsets and slopes, scaled inverse capacities) are precomputed
once per round, and scalar updates use Python floats rather than numpy scalars.
"""

from __future__ import annotations

import numpy as np

from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray

FIT_TOLERANCE_MIPS = 1e-6
"""Slack in the headroom test, so a host filled exactly to the threshold still counts as fitting."""


class HostLoadState:
    """Per-host CPU load, free memory and power of a fleet, updated as moves are planned.

    Attributes:
        capacity_mips: Total CPU capacity per host (read-only view of the fleet).
        pe_mips: Capacity of one processing element per host (read-only view).
        load_mips: Working CPU request per host.
        headroom_mips: CPU that can still be added before the utilisation limit, per host.
        ram_free_bytes: Working free memory per host.
        power_now_w: Power at the working load, so power-aware rules only interpolate the "after".
        ivn_masks: Boolean matrix (IVNs, hosts): ``ivn_masks[k, h]`` is true when host ``h`` is in IVN ``k``.
    """

    def __init__(self, fleet: FleetSnapshot, limit_util: float) -> None:
        """Copy the fleet's host load and memory; ``limit_util`` is the utilisation no target may pass."""
        self.capacity_mips = fleet.host_cpu_capacity_mips
        self.pe_mips = fleet.host_pe_mips
        self.load_mips = fleet.host_request_mips()
        self.headroom_mips = limit_util * self.capacity_mips - self.load_mips
        self.ram_free_bytes = fleet.host_ram_bytes - fleet.host_ram_used_bytes()
        self.ivn_masks = fleet.host_ivn[None, :] == np.arange(len(fleet.ivn_names))[:, None]
        table = np.asarray(fleet.host_power_w, dtype=np.float64)
        self._top = table.shape[1] - 1
        # Segment k of host h covers x in [k, k+1] (x = utilisation x table steps) and is stored as
        # intercept + slope * x at flat index h * (top + 1) + k. The last "segment" (k = top) is flat
        # at the 100 % figure, so x = top needs no special case.
        slope = np.diff(table, axis=1, append=table[:, -1:])
        self._slope_flat = slope.ravel()
        self._intercept_flat = (table - slope * np.arange(self._top + 1)).ravel()
        self._row_base = np.arange(fleet.n_hosts, dtype=np.int64) * (self._top + 1)
        self._steps_per_mips = self._top / self.capacity_mips
        self._min_pe_mips = float(self.pe_mips.min()) if fleet.n_hosts else 0.0
        self.power_now_w = self._power(self._row_base, self.load_mips * self._steps_per_mips)
        self._fit = np.empty(fleet.n_hosts, dtype=np.bool_)
        self._scratch = np.empty(fleet.n_hosts, dtype=np.bool_)

    def util(self) -> FloatArray:
        """Return the working utilisation of every host (requested MIPS over capacity)."""
        return self.load_mips / self.capacity_mips

    def fitting_hosts(self, eligible: BoolArray, request_mips: float, ram_bytes: float) -> IntArray:
        """Return, ascending, the eligible hosts that can take an instance without passing the limit.

        A host fits when the request fits under its utilisation limit, its free memory holds the
        instance, and one of its processing elements is at least as fast as the request (a
        single-PE instance cannot use more than one PE).
        """
        fit, scratch = self._fit, self._scratch
        np.greater_equal(self.headroom_mips, request_mips - FIT_TOLERANCE_MIPS, out=fit)
        np.greater_equal(self.ram_free_bytes, ram_bytes, out=scratch)
        fit &= scratch
        if request_mips > self._min_pe_mips:
            np.greater_equal(self.pe_mips, request_mips, out=scratch)
            fit &= scratch
        fit &= eligible
        return fit.nonzero()[0]

    def power_after(self, hosts: IntArray, request_mips: float) -> FloatArray:
        """Return the power (W) fitting ``hosts`` would draw with ``request_mips`` more load each.

        Only for hosts that fit (utilisation after at most 1), which is why it can skip clamping.
        """
        x = (self.load_mips[hosts] + request_mips) * self._steps_per_mips[hosts]
        index = self._row_base[hosts] + x.astype(np.int64)
        return self._intercept_flat[index] + self._slope_flat[index] * x

    def _power(self, row_base: IntArray, steps: FloatArray) -> FloatArray:
        """Interpolate power tables at ``steps`` (utilisation times the table's step count).

        The same arithmetic, operation for operation, as :meth:`power_after` and
        :meth:`_power_scalar`, so a host's power "now" and "after" are computed identically and
        exact ties between equal hosts stay ties. Utilisation above 1 draws the 100 % figure.
        """
        x = np.minimum(steps, float(self._top))
        index = row_base + x.astype(np.int64)
        return self._intercept_flat[index] + self._slope_flat[index] * x

    def _power_scalar(self, host: int, load_mips: float) -> float:
        x = min(load_mips * float(self._steps_per_mips[host]), float(self._top))
        index = int(self._row_base[host]) + int(x)
        return float(self._intercept_flat[index]) + float(self._slope_flat[index]) * x

    def move(self, source: int, target: int, request_mips: float, ram_bytes: float) -> None:
        """Plan one instance from ``source`` to ``target`` (either may be ``-1`` for "nowhere")."""
        if source >= 0:
            self._shift(source, -request_mips, -ram_bytes)
        if target >= 0:
            self._shift(target, request_mips, ram_bytes)

    def _shift(self, host: int, request_mips: float, ram_bytes: float) -> None:
        load = float(self.load_mips[host]) + request_mips
        self.load_mips[host] = load
        self.headroom_mips[host] -= request_mips
        self.ram_free_bytes[host] -= ram_bytes
        self.power_now_w[host] = self._power_scalar(host, load)

    def remove(self, hosts: IntArray, request_mips: FloatArray, ram_bytes: FloatArray) -> None:
        """Take many instances off their hosts at once (the selection step), vectorised."""
        n = self.load_mips.shape[0]
        freed_mips = np.bincount(hosts, weights=request_mips, minlength=n)
        self.load_mips -= freed_mips
        self.headroom_mips += freed_mips
        self.ram_free_bytes += np.bincount(hosts, weights=ram_bytes, minlength=n)
        touched = np.unique(hosts)
        self.power_now_w[touched] = self._power(
            self._row_base[touched], self.load_mips[touched] * self._steps_per_mips[touched]
        )
