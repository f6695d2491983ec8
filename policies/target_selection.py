"""Target-host selection rules: which of the hosts that fit an instance receives it.

Every rule implements :class:`TargetSelection` and works on a whole candidate array at once (numpy
over hosts), never host by host, because a consolidation round places hundreds of instances over
thousands of hosts every control tick. Candidates arrive already filtered for fit and ascending by
host index, so "ties → lowest index" is numpy's ``argmin`` behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from policies.fleet import IntArray
from policies.host_load_state import HostLoadState


class TargetSelection(Protocol):
    """Choose one host among the candidates that fit an instance."""

    name: str

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the chosen host index.

        Args:
            state: Working host load (already including moves planned earlier this round).
            hosts: Non-empty, ascending indices of hosts that fit the instance.
            request_mips: The instance's CPU request.
        """
        ...


class FirstFit:
    """The lowest-indexed host that fits: cheapest rule and CloudSim's static placement."""

    name = "first_fit"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the first candidate."""
        return int(hosts[0])


class LeastLoaded:
    """The host with the lowest utilisation after placement: spreads load, favours headroom."""

    name = "least_loaded"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the candidate with the smallest resulting utilisation (ties → lowest index)."""
        after = (state.load_mips[hosts] + request_mips) / state.capacity_mips[hosts]
        return int(hosts[np.argmin(after)])


class PowerAwareBestFit:
    """PABFD (Beloglazov & Buyya): the host whose power draw grows least by taking the instance.

    Power comes from each host's SPECpower table, so heterogeneous hosts are compared by watts, not
    utilisation. "Now" is the working load (moves planned earlier in the round included), which is
    what makes a planned move affect later placements.
    """

    name = "power_aware_best_fit"

    def choose(self, state: HostLoadState, hosts: IntArray, request_mips: float) -> int:
        """Return the candidate with the minimum ``P(u_after) - P(u_now)`` (ties → lowest index)."""
        increase = state.power_after(hosts, request_mips) - state.power_now_w[hosts]
        return int(hosts[np.argmin(increase)])


TARGET_SELECTIONS: dict[str, Callable[[], TargetSelection]] = {
    FirstFit.name: FirstFit,
    LeastLoaded.name: LeastLoaded,
    PowerAwareBestFit.name: PowerAwareBestFit,
}
"""Named target-selection rules, as configuration files refer to them."""
