"""Simulated host health readings drawn from the real Backblaze SMART rows of failed and healthy drives.

The twin needs health readings whose distribution is the one the failure classifier was trained on, so
that :class:`policies.failure_prediction.FailureRiskModel` scores simulated hosts exactly as it would
score real ones. Rather than fitting a parametric model to heavy-tailed, zero-inflated counters (most
drives report 0 reallocated sectors, a few report thousands), :class:`SmartHealthSampler` bootstraps
whole rows: a healthy host reports the readings of a random healthy drive, a host about to fail those of
a random drive on its failure day. Drawing whole rows keeps the joint distribution (a drive with pending
sectors usually also has reallocated ones) that per-feature draws would break.

For a host on its way to failure, ``closeness`` in [0, 1] interpolates each reading between a healthy
draw (0) and a failed draw (1), rounded to whole counts. That ramp is an assumption of the twin, not
something the data shows: the last-day files have one snapshot per drive, and only the TOSHIBA 10-day
file shows the days before a failure.

Why here and not in ``policies/``: this is the world side, what hosts *report*. The decision core only
reads readings and must not carry a twin-only data source (issue 5: no twin-only branch in a policy);
the trace data it draws on is loaded by :mod:`scenarios.traces.backblaze`, which the twin may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from scenarios.traces.backblaze import HEALTH_FEATURES, load_backblaze

FloatArray = npt.NDArray[np.float64]


class SmartHealthSampler:
    """Bootstrap health readings from pools of real healthy and failed drive rows.

    Args:
        healthy: Readings of drives that did not fail, shape ``(n_healthy, len(features))``.
        failed: Readings of drives on their failure day, shape ``(n_failed, len(features))``.
        features: Column names of both pools.

    Raises:
        ValueError: An empty pool, mismatched shapes, or a value that is not a finite number >= 0.
    """

    def __init__(self, healthy: npt.ArrayLike, failed: npt.ArrayLike, features: Sequence[str]) -> None:
        self.features = tuple(features)
        self.healthy = self._pool("healthy", healthy)
        self.failed = self._pool("failed", failed)

    def _pool(self, name: str, rows: npt.ArrayLike) -> FloatArray:
        pool = np.array(rows, dtype=np.float64)
        if pool.ndim != 2 or pool.shape[1] != len(self.features):
            raise ValueError(f"{name} pool has shape {pool.shape}; expected (n, {len(self.features)})")
        if len(pool) == 0:
            raise ValueError(f"{name} pool is empty; need at least one real drive row")
        if not (np.isfinite(pool) & (pool >= 0)).all():
            raise ValueError(f"{name} pool holds a value that is not a finite number >= 0")
        pool.setflags(write=False)
        return pool

    @classmethod
    def from_table(cls, table: pd.DataFrame, features: Sequence[str] = HEALTH_FEATURES) -> SmartHealthSampler:
        """Pools from a last-day table (:func:`scenarios.traces.backblaze.load_backblaze`): split on ``failure``."""
        failed = table["failure"].to_numpy() == 1
        values = table.loc[:, list(features)].to_numpy(dtype=np.float64)
        return cls(values[~failed], values[failed], features)

    @classmethod
    def from_roots(cls, roots: Sequence[Path], features: Sequence[str] = HEALTH_FEATURES) -> SmartHealthSampler:
        """Pools from the real last-day files under the first of ``roots`` that holds them."""
        return cls.from_table(load_backblaze(roots, window="last_day"), features)

    def sample(
        self,
        rng: np.random.Generator,
        heading_to_failure: npt.ArrayLike,
        closeness: npt.ArrayLike | None = None,
    ) -> pd.DataFrame:
        """One reading per host.

        Args:
            rng: Source of every draw; the same generator state gives the same readings.
            heading_to_failure: One boolean per host.
            closeness: Per host in [0, 1], how far along its way to failure (1 = the failure day) a host
                heading to failure is; ignored for the others. None means 1 for every such host.

        Returns:
            Frame with one row per host and :attr:`features` as columns.

        Raises:
            ValueError: ``closeness`` of another length or outside [0, 1].
        """
        failing = np.asarray(heading_to_failure, dtype=bool).reshape(-1)
        n = len(failing)
        weight = np.ones(n) if closeness is None else np.asarray(closeness, dtype=np.float64).reshape(-1)
        if weight.shape != (n,):
            raise ValueError(f"closeness has {weight.size} values for {n} hosts")
        if not ((weight >= 0) & (weight <= 1)).all():
            raise ValueError("closeness must lie in [0, 1]")
        # Both draws for every host, so a host's readings do not depend on which other hosts are failing.
        healthy = self.healthy[rng.integers(0, len(self.healthy), size=n)]
        failed = self.failed[rng.integers(0, len(self.failed), size=n)]
        w = np.where(failing, weight, 0.0)[:, None]
        readings = np.round(healthy + w * (failed - healthy))
        return pd.DataFrame(readings, columns=list(self.features))
