"""Scheduled events as the core knows them: the *declaration* an operator makes ahead of time.

A maintenance window, a marketing campaign with an expected multiplier, a seasonal peak: each is
announced with a window, an expected effect on demand and the instances it concerns. That
declaration is all a forecaster or a policy may see. What the event really does to demand belongs to
the world (the twin injects it from the scenario, a live fleet just experiences it), so this record
has no field for it, and nothing in ``policies/`` can ever read the real effect.

The module is dependency-free so that :mod:`policies.fleet` can carry these records without importing
the forecasters (which import the fleet themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ScheduledEvent:
    """An event declared ahead of time (maintenance window, campaign, seasonal peak).

    The forecaster sees only this declaration; whatever the event really does to demand is the
    world's business (the twin injects it, a live fleet just experiences it).

    Attributes:
        name: Column name of the event's feature.
        start_s: Start, in the same clock as the timestamps (epoch seconds, or simulated seconds in
            the twin, where the fleet view's ``now_s`` uses the same clock).
        end_s: End (exclusive).
        multiplier: Declared effect on demand (1.3 = +30 %); the feature is ``multiplier - 1``
            inside the window and 0 outside, so "no event" and "no effect" look the same.
        kind: ``maintenance``, ``campaign``, ``seasonal_peak`` (or "" when unknown). Events of one
            kind share a feature column in the predictive policy, so the effect a forecaster learned
            on the last campaign carries over to the next.
        instance_ids: The instances the event concerns; ``None``: every instance.
    """

    name: str
    start_s: float
    end_s: float
    multiplier: float = 1.0
    kind: str = ""
    instance_ids: tuple[str, ...] | None = None

    def touches(self, instance_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Which of ``instance_ids`` the event concerns, as a boolean mask."""
        if self.instance_ids is None:
            return np.ones(len(instance_ids), dtype=np.bool_)
        members = set(self.instance_ids)
        return np.fromiter((i in members for i in instance_ids), dtype=np.bool_, count=len(instance_ids))


def declared_multipliers(
    events: Sequence[ScheduledEvent], instance_ids: Sequence[str], times_s: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The declared demand multiplier of every instance at every time: (instances x times).

    Overlapping events multiply (a campaign during a seasonal peak); 1 where nothing is declared.
    """
    out = np.ones((len(instance_ids), times_s.size))
    for event in events:
        inside = (times_s >= event.start_s) & (times_s < event.end_s)
        if not inside.any():
            continue
        rows = event.touches(instance_ids)
        out[np.ix_(rows, inside)] *= event.multiplier
    return out


__all__ = ["ScheduledEvent", "declared_multipliers"]
