"""Target-host selection rules: which of the hosts that fit an instance receives it.

A rule is a name (as configuration files refer to it) plus the id of its compiled scoring branch in
:func:`policies.placement_kernels.choose_target`. The choice itself runs inside the placement
kernels because a consolidation round places hundreds of instances, one after another, over
thousands of hosts every control tick; a Python call per placement would cost more than the
placement. Every rule scans fitting hosts in index order and keeps only a strictly better one, so
ties go to the lowest host index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from policies import placement_kernels


class TargetSelection(Protocol):
    """Choose one host among the hosts that fit an instance."""

    name: str
    kernel_id: int
    """Which scoring branch of :func:`policies.placement_kernels.choose_target` implements the rule."""


class FirstFit:
    """The lowest-indexed host that fits: cheapest rule and CloudSim's static placement."""

    name = "first_fit"
    kernel_id = placement_kernels.FIRST_FIT


class LeastLoaded:
    """The host with the lowest utilisation after placement: spreads load, favours headroom."""

    name = "least_loaded"
    kernel_id = placement_kernels.LEAST_LOADED


class PowerAwareBestFit:
    """PABFD (Beloglazov & Buyya): the host whose power draw grows least by taking the instance.

    Power comes from each host's SPECpower table, so heterogeneous hosts are compared by watts, not
    utilisation. "Now" is the working load (moves planned earlier in the round included), which is
    what makes a planned move affect later placements.
    """

    name = "power_aware_best_fit"
    kernel_id = placement_kernels.POWER_AWARE_BEST_FIT


TARGET_SELECTIONS: dict[str, Callable[[], TargetSelection]] = {
    FirstFit.name: FirstFit,
    LeastLoaded.name: LeastLoaded,
    PowerAwareBestFit.name: PowerAwareBestFit,
}
"""Named target-selection rules, as configuration files refer to them."""
