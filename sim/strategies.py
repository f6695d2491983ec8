"""Migration strategies in one model: estimates, the choice between them, and their simulation.

Three ways to move an instance, all costed in the same three numbers (bytes sent, duration, downtime):

* **precopy**: iterative pre-copy (Clark et al., NSDI 2005). Round 0 sends the whole state while the
  instance runs; each later round sends the unique bytes dirtied during the previous round's *actual*
  duration, ``U(W, D, t) = W * (1 - exp(-D t / W))``; stop-and-copy once the remainder would send
  within ``max_downtime_s`` at the current rate, or after ``max_precopy_rounds`` (not converged).
* **cold**: stop the instance, copy everything, start it on the target.
* **mirror_restore**: the target IVN's Mirror Store already holds a snapshot; the replacement is
  restored from the store while only the delta since the snapshot crosses the network (round 0),
  then pre-copy rounds continue on what was dirtied meanwhile, ending in a short stop-and-copy.

The estimates (:func:`estimate_pre_copy`, :func:`estimate_cold`, :func:`estimate_mirror_restore`)
run the same recurrence as the simulation at a constant, uncontended rate, so the difference between
estimate and outcome is exactly what contention (and demand changes) did. The simulation
(:func:`simulate_copy`) starts one :class:`~sim.network.SharedNetwork` transfer per round, so
concurrent migrations stretch each other's rounds and, through them, the dirty sets: one SimPy
resume per round, no per-page work.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import simpy

from sim.migration_physics import unique_dirty_bytes
from sim.network import SharedNetwork

Strategy = Literal["precopy", "cold", "mirror_restore"]
#: Resume time at the target (s), as in the closed form's ``T_res``.
RESUME_S = 0.02
#: Downtimes closer than this (s) count as equal in :func:`choose_strategy`, so float noise between
#: two strategies that both end in an empty stop-and-copy does not override the bytes tie-break.
DOWNTIME_TIE_S = 1e-3
#: Order among strategies equal in downtime and bytes: the one that disturbs the instance least.
_PREFERENCE: dict[str, int] = {"mirror_restore": 0, "precopy": 1, "cold": 2}


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """Cost of one migration by one strategy, estimated or simulated.

    Attributes:
        kind: The strategy.
        bytes_total: Bytes sent over the network (all rounds, stop-and-copy included).
        duration_s: From the start to the end of the stop-and-copy (resume not included, as in the
            closed form's ``T_mig``).
        downtime_s: Stop-and-copy duration plus resume time.
        rounds: Index of the stop-and-copy round (0 = everything sent while stopped).
        converged: False when the round limit forced the stop-and-copy.
    """

    kind: Strategy
    bytes_total: float
    duration_s: float
    downtime_s: float
    rounds: int
    converged: bool


def choose_strategy(candidates: Sequence[CopyOutcome], downtime_target_s: float = 0.0) -> CopyOutcome:
    """Pick the strategy to use among the applicable ones' estimates.

    Rule: lowest estimated downtime, ties to fewer bytes, then mirror_restore > precopy > cold.
    Downtimes tie when they are within :data:`DOWNTIME_TIE_S` of each other *or* both meet the
    operator's target (``downtime_target_s``, i.e. ``max_downtime_s`` plus resume): a pre-copy stops
    at whatever remainder first fits the target, so among converging strategies which one ends with
    the smaller remainder is an accident of round boundaries, while their bytes differ by the whole
    state. Downtime comes first because users of the instance feel it; bytes second because everyone
    else on the links pays for them.
    """
    if not candidates:
        raise ValueError("no strategy to choose from")
    best_down = max(min(c.downtime_s for c in candidates), downtime_target_s)
    tied = [c for c in candidates if c.downtime_s <= best_down + DOWNTIME_TIE_S]
    return min(tied, key=lambda c: (c.bytes_total, _PREFERENCE[c.kind]))


def _next_round(working_set: float, dirty_Bps: float, last_round_s: float) -> float:
    """Bytes the next round must send: unique bytes dirtied during the last round."""
    return unique_dirty_bytes(working_set, dirty_Bps, last_round_s)


def estimate_pre_copy(
    memory_bytes: float,
    rate_Bps: float,
    dirty_Bps: float,
    working_set_bytes: float,
    *,
    max_downtime_s: float,
    max_rounds: int,
    resume_s: float = RESUME_S,
    first_round_s: float | None = None,
    kind: Strategy = "precopy",
) -> CopyOutcome:
    """Pre-copy at a constant rate, by the simulation's recurrence (closed form when ``W`` is large).

    Args:
        memory_bytes: Bytes of round 0.
        rate_Bps: Uncontended rate (bytes/s).
        dirty_Bps: Dirty rate (bytes/s), assumed constant.
        working_set_bytes: Writable working set ``W`` over which dirtying saturates.
        max_downtime_s: Stop-and-copy once the remainder sends within this.
        max_rounds: Forced stop-and-copy at this round.
        resume_s: Resume time at the target.
        first_round_s: Round 0's duration when something else bounds it (a store restore); the
            immediate stop-and-copy of a small state is then not allowed.
        kind: Label of the result.
    """
    v_th = max_downtime_s * rate_Bps
    if first_round_s is None and memory_bytes <= v_th:
        t = memory_bytes / rate_Bps
        return CopyOutcome(kind, memory_bytes, t, t + resume_s, 0, True)
    t_round = memory_bytes / rate_Bps if first_round_s is None else max(memory_bytes / rate_Bps, first_round_s)
    total_bytes, total_s, n = memory_bytes, t_round, 0
    while True:
        n += 1
        remaining = _next_round(working_set_bytes, dirty_Bps, t_round)
        if remaining <= v_th or n >= max_rounds:
            t_stop = remaining / rate_Bps
            return CopyOutcome(kind, total_bytes + remaining, total_s + t_stop, t_stop + resume_s, n, remaining <= v_th)
        t_round = remaining / rate_Bps
        total_bytes += remaining
        total_s += t_round


def estimate_cold(memory_bytes: float, rate_Bps: float, *, resume_s: float = RESUME_S) -> CopyOutcome:
    """Cold copy: the whole transfer is downtime."""
    t = memory_bytes / rate_Bps
    return CopyOutcome("cold", memory_bytes, t, t + resume_s, 0, True)


def estimate_mirror_restore(
    delta_bytes: float,
    restore_s: float,
    rate_Bps: float,
    dirty_Bps: float,
    working_set_bytes: float,
    *,
    max_downtime_s: float,
    max_rounds: int,
    resume_s: float = RESUME_S,
) -> CopyOutcome:
    """Mirror-restore: round 0 ships the delta while the store restores; pre-copy rounds follow."""
    return estimate_pre_copy(
        delta_bytes,
        rate_Bps,
        dirty_Bps,
        working_set_bytes,
        max_downtime_s=max_downtime_s,
        max_rounds=max_rounds,
        resume_s=resume_s,
        first_round_s=restore_s,
        kind="mirror_restore",
    )


def simulate_copy(
    env: simpy.Environment,
    network: SharedNetwork,
    links: Sequence[int],
    kind: Strategy,
    *,
    first_bytes: float,
    nominal_Bps: float,
    dirty_Bps: Callable[[], float],
    working_set_bytes: float,
    max_downtime_s: float,
    max_rounds: int,
    pause: Callable[[], None],
    resume_s: float = RESUME_S,
    first_round_wait: simpy.Event | None = None,
    tag: str = "migration",
) -> Generator[simpy.Event, Any, CopyOutcome]:
    """Carry out one migration on the shared network (a SimPy process body); returns its outcome.

    ``cold`` pauses at once and sends ``first_bytes``. ``precopy`` and ``mirror_restore`` send
    ``first_bytes`` live (``mirror_restore`` also waits for ``first_round_wait``, the store restore),
    then one transfer per round of what was dirtied during the previous round, at the rate the
    previous round ended with. ``pause`` is called when the instance stops serving (the
    stop-and-copy); the caller resumes it when the process ends.
    """
    start = env.now
    if kind == "cold" or (kind == "precopy" and first_bytes <= max_downtime_s * nominal_Bps):
        pause()
        t = network.start(links, first_bytes, tag=tag)
        yield t.done
        return CopyOutcome(kind, first_bytes, env.now - start, env.now - start + resume_s, 0, True)
    total = first_bytes
    round_start = env.now
    t = network.start(links, first_bytes, tag=tag)
    yield t.done if first_round_wait is None else env.all_of([t.done, first_round_wait])
    n = 0
    while True:
        n += 1
        rate = t.rate_bps / 8.0 if t.rate_bps > 0 else nominal_Bps
        remaining = _next_round(working_set_bytes, float(dirty_Bps()), env.now - round_start)
        total += remaining
        stop = remaining <= max_downtime_s * rate
        if stop or n >= max_rounds:
            pause()
            paused_at = env.now
            t = network.start(links, remaining, tag=tag)
            yield t.done
            return CopyOutcome(kind, total, env.now - start, env.now - paused_at + resume_s, n, stop)
        round_start = env.now
        t = network.start(links, remaining, tag=tag)
        yield t.done
