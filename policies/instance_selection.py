"""Instance-selection rules: which instances leave an overloaded host first.

A rule only supplies a sort key over candidate instances (smaller leaves first); the policy then
takes instances in that order until the host is back under its threshold. A key, rather than a
per-host loop, lets the policy order the candidates of every overloaded host in one ``lexsort``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from policies.fleet import FleetSnapshot, FloatArray, IntArray


class InstanceSelection(Protocol):
    """Order an overloaded host's instances for eviction."""

    name: str

    def sort_key(self, fleet: FleetSnapshot, instances: IntArray) -> FloatArray:
        """Return one key per instance in ``instances``; smaller keys are evicted first."""
        ...


class MinimumMigrationTime:
    """MMT: the instance with the least memory first, because its migration finishes soonest."""

    name = "minimum_migration_time"

    def sort_key(self, fleet: FleetSnapshot, instances: IntArray) -> FloatArray:
        """Return the instances' memory sizes."""
        return fleet.instance_ram_bytes[instances]


class MinimumUtilization:
    """MU: the least utilised instance first, because moving it disturbs the least work."""

    name = "minimum_utilization"

    def sort_key(self, fleet: FleetSnapshot, instances: IntArray) -> FloatArray:
        """Return the instances' current CPU request as a fraction of their capacity."""
        return fleet.instance_cpu_request_mips[instances] / fleet.instance_cpu_capacity_mips[instances]


INSTANCE_SELECTIONS: dict[str, Callable[[], InstanceSelection]] = {
    MinimumMigrationTime.name: MinimumMigrationTime,
    MinimumUtilization.name: MinimumUtilization,
}
"""Named instance-selection rules, as configuration files refer to them."""
