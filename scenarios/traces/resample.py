"""Irregular samples -> regular grid, for all series and metrics at once.

Some traces (Bitbrains, Alibaba) sample at irregular instants, with duplicates and gaps; the twin needs
dense (instances x steps) matrices on one grid. The rule, shared by every loader so traces are
comparable:

* **Grid.** Step ``k`` covers ``[origin + k*step, origin + (k+1)*step)``. The default origin is the
  earliest sample floored to a multiple of ``step_s`` (so grids of different files line up on clock
  multiples); the grid ends at the bin of the latest sample.
* **Binning.** A step's value is the mean of every sample falling in it, so duplicate timestamps and
  several samples per bin are averaged, and a bin that is fully covered keeps the mean of its samples.
  NaN samples are ignored for that metric.
* **Gaps.** An empty step *between* a series' first and last sample is linearly interpolated between the
  nearest non-empty steps on either side, whatever the gap length: the instance existed then, and a
  straight line neither invents a spike nor drops demand to zero. The number of filled steps is returned
  so callers can report it.
* **Outside the lifetime.** Steps before a series' first sample or after its last are 0: the instance
  did not exist, so it demanded nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class RegularGrid:
    """Result of :func:`resample_to_grid`.

    Attributes:
        values: float32 array (metrics, series, steps).
        origin_s: Time of step 0, in the samples' own time base.
        step_s: Grid spacing.
        filled_steps: How many (series, step) cells were interpolated, per metric.
    """

    values: npt.NDArray[np.float32]
    origin_s: float
    step_s: float
    filled_steps: npt.NDArray[np.int64]


def resample_to_grid(
    series: npt.ArrayLike,
    times_s: npt.ArrayLike,
    values: npt.ArrayLike,
    n_series: int,
    step_s: float,
    *,
    origin_s: float | None = None,
    n_steps: int | None = None,
) -> RegularGrid:
    """Average irregular samples of many series into a regular grid (see the module rules).

    Args:
        series: Row index (0..n_series-1) of each sample.
        times_s: Time of each sample, seconds.
        values: Sample values, shape (samples,) or (samples, metrics).
        n_series: Number of rows in the output (series without samples are all zero).
        step_s: Grid spacing, seconds (> 0).
        origin_s: Time of step 0; default: earliest sample floored to a multiple of ``step_s``.
        n_steps: Grid length; default: up to and including the latest sample's step. Samples outside
            ``[0, n_steps)`` are dropped.

    Returns:
        The regular grid.

    Raises:
        ValueError: Inconsistent lengths, a non-positive step, or no samples and no ``n_steps``.
    """
    if not step_s > 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    rows = np.asarray(series, dtype=np.int64)
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if not (rows.shape == t.shape == v.shape[:1]):
        raise ValueError(f"series {rows.shape}, times {t.shape} and values {v.shape} differ in length")
    if rows.size and (rows.min() < 0 or rows.max() >= n_series):
        raise ValueError(f"series index out of range 0..{n_series - 1}")
    if origin_s is None:
        if t.size == 0:
            raise ValueError("no samples: give origin_s and n_steps")
        origin_s = float(np.floor(t.min() / step_s) * step_s)
    step_idx = np.floor((t - origin_s) / step_s).astype(np.int64)
    if n_steps is None:
        if t.size == 0:
            raise ValueError("no samples: give origin_s and n_steps")
        n_steps = int(step_idx.max()) + 1
    keep = (step_idx >= 0) & (step_idx < n_steps)
    if not keep.all():
        rows, step_idx, v = rows[keep], step_idx[keep], v[keep]
    cell = rows * n_steps + step_idx
    size = n_series * n_steps

    n_metrics = v.shape[1]
    out = np.zeros((n_metrics, n_series, n_steps), dtype=np.float32)
    filled = np.zeros(n_metrics, dtype=np.int64)
    counts_all = np.bincount(cell, minlength=size)
    plan_all: _FillPlan | None = None
    for m in range(n_metrics):
        col = v[:, m]
        nan = np.isnan(col)
        if nan.any():
            ok = ~nan
            sums = np.bincount(cell[ok], weights=col[ok], minlength=size)
            counts = np.bincount(cell[ok], minlength=size)
            plan = _FillPlan.build(counts, n_steps)
        else:
            # Common case: every metric has the same samples, so the fill plan is computed once.
            sums = np.bincount(cell, weights=col, minlength=size)
            counts = counts_all
            plan_all = plan_all or _FillPlan.build(counts, n_steps)
            plan = plan_all
        out[m] = plan.apply(sums, counts).reshape(n_series, n_steps)
        filled[m] = plan.n_filled
    return RegularGrid(values=out, origin_s=origin_s, step_s=float(step_s), filled_steps=filled)


@dataclass(frozen=True)
class _FillPlan:
    """Which empty cells to interpolate, and from which neighbours, for one occupancy pattern.

    Works on the flattened (series x steps) array at once: the previous and next non-empty cell of
    every cell come from running max/min of indices, and an empty cell is interior exactly when both
    lie in its own row. Cells outside every row's lifetime stay 0.
    """

    valid: npt.NDArray[np.bool_]
    targets: npt.NDArray[np.int64]
    prev: npt.NDArray[np.int64]
    nxt: npt.NDArray[np.int64]
    frac: npt.NDArray[np.float64]

    @property
    def n_filled(self) -> int:
        """Number of interpolated cells."""
        return int(self.targets.size)

    @classmethod
    def build(cls, counts: npt.NDArray[np.int64], n_steps: int) -> _FillPlan:
        """Plan the interpolation for cells with ``counts == 0``."""
        size = counts.size
        valid = counts > 0
        idx = np.arange(size, dtype=np.int64)
        prev = np.maximum.accumulate(np.where(valid, idx, -1))
        nxt = np.minimum.accumulate(np.where(valid, idx, size)[::-1])[::-1]
        interior = ~valid & (prev >= 0) & (nxt < size)
        row = idx // n_steps
        interior &= (prev // n_steps == row) & (nxt // n_steps == row)
        targets = np.flatnonzero(interior)
        p, n = prev[targets], nxt[targets]
        frac = (targets - p) / np.maximum(n - p, 1)
        return cls(valid=valid, targets=targets, prev=p, nxt=n, frac=frac)

    def apply(self, sums: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Per-cell mean, with the planned cells interpolated."""
        mean = np.zeros(sums.size, dtype=np.float64)
        np.divide(sums, counts, out=mean, where=self.valid)
        if self.targets.size:
            lo, hi = mean[self.prev], mean[self.nxt]
            mean[self.targets] = lo + (hi - lo) * self.frac
        return mean


def regrid_matrix(matrix: npt.NDArray[np.float32], step_s: float, new_step_s: float) -> npt.NDArray[np.float32]:
    """Put a regular (series x steps) matrix onto another step with the same rules.

    Used when a caller asks a regularly sampled trace (PlanetLab, Azure) for a different ``step_s``:
    coarser steps average the samples they contain, finer ones interpolate between samples. The new
    grid ends at the step holding the last sample, so no trailing zero step is invented.
    """
    if new_step_s == step_s:
        return matrix
    n_series, n = matrix.shape
    rows = np.repeat(np.arange(n_series, dtype=np.int64), n)
    times = np.tile(np.arange(n, dtype=np.float64) * step_s, n_series)
    n_new = int((n - 1) * step_s // new_step_s) + 1
    grid = resample_to_grid(rows, times, matrix.reshape(-1), n_series, new_step_s, origin_s=0.0, n_steps=n_new)
    return grid.values[0]
