"""The Null policy: never migrates.

Every strategy family has a Null variant (CloudSim Plus convention): it is the baseline every
comparison needs ("what happens if we do nothing?") and a safe default for wiring tests.
"""

from __future__ import annotations

from policies.fleet import FleetSnapshot
from policies.records import MigrationPlan


class NullPolicy:
    """A policy that looks at the fleet and changes nothing."""

    name = "null"

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Return the empty plan, whatever the fleet looks like."""
        return MigrationPlan.empty()
