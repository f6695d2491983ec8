"""VM-selection rules of CloudSim 3.0.3 (MMT, MU, MC, RS): which instance leaves an overloaded host next.

CloudSim picks one VM at a time from the host's remaining migratable VMs, removes it, and asks the
overload detector again (reference ``cloudsim-planetlab.md`` §1.8 step 3). MMT and MU could be a
fixed sort key (that is how :mod:`policies.instance_selection` serves :class:`ThresholdPolicy`), but
MC's choice depends on which VMs are still there, so the common interface here is "pick the next one
of these candidates". Candidates are passed in the host's VM-list order; ties go to the first of them,
as CloudSim's strict comparisons do (§1.10). Callers pass only instances not in migration.

The MMT and MU classes extend their :mod:`policies.instance_selection` namesakes, so one object serves
both interfaces and both give the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from policies import instance_selection
from policies.fleet import FleetSnapshot, FloatArray, IntArray


class VmSelection(Protocol):
    """Choose the next instance to migrate off an overloaded host (``getVmToMigrate``)."""

    name: str

    def pick(self, fleet: FleetSnapshot, candidates: IntArray) -> int:
        """Return the instance index, one of ``candidates`` (non-empty, host-list order), to move next."""
        ...


def _first_minimum(candidates: IntArray, key: FloatArray) -> int:
    return int(candidates[int(np.argmin(key))])  # argmin returns the first of equal keys


class MinimumMigrationTime(instance_selection.MinimumMigrationTime):
    """MMT: the instance with the least memory, whose migration ends soonest (§1.10).

    CloudSim compares the VM type's static RAM; the fleet's ``instance_ram_bytes`` is that figure.
    """

    def pick(self, fleet: FleetSnapshot, candidates: IntArray) -> int:
        """Return the candidate with the least memory, the first one on ties."""
        return _first_minimum(candidates, self.sort_key(fleet, candidates))


class MinimumUtilization(instance_selection.MinimumUtilization):
    """MU: the instance using the smallest fraction of its CPU now, which disturbs the least work (§1.10)."""

    def pick(self, fleet: FleetSnapshot, candidates: IntArray) -> int:
        """Return the least utilised candidate, the first one on ties."""
        return _first_minimum(candidates, self.sort_key(fleet, candidates))


def r_squared(histories: FloatArray) -> FloatArray | None:
    """R² of each row regressed on all other rows by OLS with an intercept, as commons-math computes it.

    Args:
        histories: (VMs, m) matrix; column ``t`` is one observation of every VM.

    Returns:
        One R² per VM, or ``None`` where ``OLSMultipleLinearRegression`` throws
        ``IllegalArgumentException``: fewer than two VMs, fewer observations than coefficients
        (``m < VMs``), or a rank-deficient design matrix (detected with ``lstsq``'s rank).
        An R² whose total sum of squares is 0 (a constant VM) is NaN, which never wins a comparison.
    """
    n_vms, m = histories.shape
    if n_vms < 2 or m < n_vms:
        return None
    out = np.empty(n_vms)
    for i in range(n_vms):
        y = histories[i]
        design = np.column_stack([np.ones(m), np.delete(histories, i, axis=0).T])
        coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
        if rank < design.shape[1]:
            return None
        residual = y - design @ coef
        total = float(((y - y.mean()) ** 2).sum())
        out[i] = np.nan if total == 0.0 else 1.0 - float(residual @ residual) / total
    return out


class MaximumCorrelation:
    """MC: the instance best explained by the others' load, whose peaks coincide with the host's (§1.10).

    Each candidate's history is regressed on the other candidates' over the newest ``m`` samples,
    ``m`` being the shortest history among them; the largest R² wins. The running maximum starts at
    the smallest positive double, so the first candidate wins when no R² is positive. When the
    regression cannot be computed, the choice falls back to ``fallback`` (MMT by default), as CloudSim's
    catch of ``IllegalArgumentException`` does.

    Args:
        fallback: Rule used when the regression fails.
    """

    name = "maximum_correlation"

    def __init__(self, fallback: VmSelection | None = None) -> None:
        self.fallback = fallback

    def pick(self, fleet: FleetSnapshot, candidates: IntArray) -> int:
        """Return the candidate with the largest R², or the fallback's choice."""
        fallback: VmSelection = MinimumMigrationTime() if self.fallback is None else self.fallback
        history = fleet.instance_cpu_history[candidates]
        observed = (~np.isnan(history)).sum(axis=1)
        m = int(observed.min()) if len(candidates) else 0
        newest = history[:, history.shape[1] - m :] if m else history[:, :0]
        scores = r_squared(newest)
        if scores is None:
            return fallback.pick(fleet, candidates)
        best, best_index = np.nextafter(0.0, 1.0), 0
        for index, score in enumerate(scores.tolist()):
            if score > best:
                best, best_index = score, index
        return int(candidates[best_index])


class RandomSelection:
    """RS: a uniformly random candidate, drawn from an injected generator so runs repeat (§1.10).

    CloudSim's ``new Random()`` is unseeded; here the same seed gives the same choices.

    Args:
        rng: Source of the draws.
    """

    name = "random_selection"

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, fleet: FleetSnapshot, candidates: IntArray) -> int:
        """Return one candidate drawn uniformly."""
        return int(candidates[int(self.rng.integers(len(candidates)))])


VM_SELECTIONS: dict[str, Callable[[np.random.Generator], VmSelection]] = {
    MinimumMigrationTime.name: lambda rng: MinimumMigrationTime(),
    MinimumUtilization.name: lambda rng: MinimumUtilization(),
    MaximumCorrelation.name: lambda rng: MaximumCorrelation(),
    RandomSelection.name: RandomSelection,
}
"""Named VM-selection rules; each factory takes the generator only :class:`RandomSelection` uses."""
