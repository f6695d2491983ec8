"""The hosts one placement stage may use, per IVN, with cheap bounds to reject hopeless placements.

In a stressed fleet most instances shed from overloaded hosts fit nowhere, and finding that out with
a full vectorised fit test over every host, for every such instance, dominates a round's cost. A
:class:`TargetPool` keeps, per IVN, an upper bound on the headroom and free memory of its eligible
hosts: a request above either bound cannot fit, and is rejected without touching numpy.

The bounds stay valid because, within a stage, eligible hosts only *lose* headroom and memory
(they receive instances) or leave the pool; the one exception, undoing a tentative evacuation,
calls :meth:`TargetPool.invalidate`. After a full test that finds nothing, the bounds are made exact,
so the next hopeless request is rejected in O(1).
"""

from __future__ import annotations

import math

import numpy as np

from policies.fleet import BoolArray, IntArray
from policies.host_load_state import FIT_TOLERANCE_MIPS, HostLoadState

_EMPTY: IntArray = np.empty(0, dtype=np.int64)


class TargetPool:
    """Eligible target hosts split by IVN, over a shared :class:`HostLoadState`.

    Args:
        state: Working host load the pool tests against.
        eligible: Hosts this stage may place onto (before per-IVN split).
    """

    def __init__(self, state: HostLoadState, eligible: BoolArray) -> None:
        self._state = state
        self._masks = eligible[None, :] & state.ivn_masks
        n_ivn = self._masks.shape[0]
        self._headroom_bound = [math.inf] * n_ivn
        self._ram_bound = [math.inf] * n_ivn
        self._exact = [False] * n_ivn

    def exclude(self, host: int) -> None:
        """Remove ``host`` from the pool for the rest of the stage (bounds stay valid upper bounds)."""
        self._masks[:, host] = False

    def invalidate(self) -> None:
        """Forget the bounds, after eligible hosts *gained* headroom (an undone tentative plan)."""
        n_ivn = len(self._headroom_bound)
        self._headroom_bound = [math.inf] * n_ivn
        self._ram_bound = [math.inf] * n_ivn
        self._exact = [False] * n_ivn

    def fitting(self, ivn: int, request_mips: float, ram_bytes: float) -> IntArray:
        """Return, ascending, the pool's hosts in IVN ``ivn`` that fit the instance."""
        if self._hopeless(ivn, request_mips, ram_bytes):
            return _EMPTY
        hosts = self._state.fitting_hosts(self._masks[ivn], request_mips, ram_bytes)
        if hosts.size == 0:
            self._tighten(ivn)
        else:
            self._exact[ivn] = False  # the caller places onto one of them: bounds may loosen
        return hosts

    def fitting_elsewhere(
        self, ivn: int, request_mips: float, ram_bytes: float, allowed_ivns: BoolArray | None
    ) -> IntArray:
        """Return, ascending, the pool's fitting hosts outside IVN ``ivn`` in the ``allowed_ivns``."""
        others = [
            k
            for k in range(len(self._headroom_bound))
            if k != ivn
            and (allowed_ivns is None or bool(allowed_ivns[k]))
            and not self._hopeless(k, request_mips, ram_bytes)
        ]
        if not others:
            return _EMPTY
        mask = self._masks[others[0]] if len(others) == 1 else self._masks[others].any(axis=0)
        hosts = self._state.fitting_hosts(mask, request_mips, ram_bytes)
        for k in others:
            if hosts.size == 0:
                self._tighten(k)
            else:
                self._exact[k] = False
        return hosts

    def _hopeless(self, ivn: int, request_mips: float, ram_bytes: float) -> bool:
        return request_mips - FIT_TOLERANCE_MIPS > self._headroom_bound[ivn] or ram_bytes > self._ram_bound[ivn]

    def _tighten(self, ivn: int) -> None:
        """Make the bounds exact, unless they already are (then recomputing would change nothing)."""
        if self._exact[ivn]:
            return
        mask = self._masks[ivn]
        headroom = self._state.headroom_mips[mask]
        self._headroom_bound[ivn] = float(headroom.max()) if headroom.size else -math.inf
        self._ram_bound[ivn] = float(self._state.ram_free_bytes[mask].max()) if headroom.size else -math.inf
        self._exact[ivn] = True
