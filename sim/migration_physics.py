"""Closed-form pre-copy live migration (Clark et al. 2005; Akoush et al. 2010; Liu et al. 2011).

The twin sizes each live migration with the iterative pre-copy model from
``../shared/reference/migration-models.md``: round 0 sends the whole state ``M``, round ``i`` sends
what was dirtied during round ``i-1`` (``V_i = M * lam**i`` with ``lam = D / R``), and the
stop-and-copy round ``n`` starts once the remaining dirty set fits the maximum downtime or the round
limit is reached. The network then carries the resulting bytes with fair sharing, so the time a
migration really takes emerges from contention; the downtime is the last round at the rate the
transfer had when it finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PreCopyPlan:
    """Outcome of the pre-copy model for one migration.

    Attributes:
        rounds: Index ``n`` of the stop-and-copy round (0 = cold copy of everything).
        bytes_total: ``V_mig``, bytes sent over all rounds.
        duration_s: ``T_mig`` at the assumed rate.
        downtime_s: Final round plus resume time.
        last_round_bytes: Bytes of the stop-and-copy round.
        converged: False when ``lam >= 1`` or the round limit forced the stop.
    """

    rounds: int
    bytes_total: float
    duration_s: float
    downtime_s: float
    last_round_bytes: float
    converged: bool


def plan_pre_copy(
    memory_bytes: float,
    rate_Bps: float,
    dirty_Bps: float,
    *,
    max_downtime_s: float = 0.3,
    max_rounds: int = 30,
    resume_s: float = 0.02,
) -> PreCopyPlan:
    """Apply the closed-form pre-copy model.

    Args:
        memory_bytes: ``M``, state to send (bytes).
        rate_Bps: ``R``, transmission rate (bytes/s).
        dirty_Bps: ``D``, page dirtying rate (bytes/s).
        max_downtime_s: ``T_max``; stop-and-copy once the remaining set sends within it.
        max_rounds: ``n_max``; forced stop-and-copy after this many rounds.
        resume_s: ``T_res``, resume time at the target.
    """
    if memory_bytes <= 0:
        return PreCopyPlan(0, 0.0, 0.0, resume_s, 0.0, True)
    lam = dirty_Bps / rate_Bps
    v_th = max_downtime_s * rate_Bps
    if lam <= 0:
        n = 1 if memory_bytes > v_th else 0
        total = memory_bytes
        last = 0.0 if n else memory_bytes
        return PreCopyPlan(n, total, total / rate_Bps, last / rate_Bps + resume_s, last, True)
    if lam < 1:
        needed = math.ceil(math.log(v_th / memory_bytes) / math.log(lam)) if memory_bytes > v_th else 0
        n = min(max(needed, 0), max_rounds)
        converged = needed <= max_rounds
        total = memory_bytes * (1 - lam ** (n + 1)) / (1 - lam)
    else:
        n = max_rounds
        converged = False
        total = memory_bytes * (n + 1) if lam == 1 else memory_bytes * (lam ** (n + 1) - 1) / (lam - 1)
    last = memory_bytes * lam**n
    return PreCopyPlan(n, total, total / rate_Bps, last / rate_Bps + resume_s, last, converged)


def unique_dirty_bytes_array(
    working_set_bytes: np.ndarray, dirty_Bps: np.ndarray, interval_s: np.ndarray
) -> np.ndarray:
    """:func:`unique_dirty_bytes` for many instances at once (0 where the working set is empty).

    Every snapshot capture calls this over all instances due; when no working set is empty (the
    usual case) the two masking passes are skipped — the arithmetic is the same either way.
    """
    w = np.asarray(working_set_bytes, dtype=np.float64)
    positive = w > 0
    all_positive = bool(positive.all())
    with np.errstate(divide="ignore", invalid="ignore"):
        out = w * -np.expm1(
            -np.asarray(dirty_Bps) * np.maximum(interval_s, 0.0) / (w if all_positive else np.where(positive, w, 1.0))
        )
    return out if all_positive else np.where(positive, out, 0.0)


def unique_dirty_bytes(working_set_bytes: float, dirty_Bps: float, interval_s: float) -> float:
    """Unique bytes dirtied in ``interval_s``: ``W * (1 - exp(-d * tau / W))`` (saturating)."""
    if working_set_bytes <= 0 or interval_s <= 0:
        return 0.0
    return working_set_bytes * -math.expm1(-dirty_Bps * interval_s / working_set_bytes)
