"""Transfers over shared links: weighted fair sharing, recomputed whenever a transfer starts or ends.

Every transfer (a migration's memory copy, a batch of snapshot deltas) crosses one or more links: the
source host's NIC egress, the destination host's NIC ingress, and for traffic between IVNs the
inter-IVN link. Each link divides its bandwidth among the transfers crossing it in proportion to their
weights (a batch of ``k`` snapshots weighs ``k``); a transfer moves at the smallest share it gets on
any of its links. This is the classic processor-sharing approximation of TCP fairness: cheap enough
to recompute on every change, and exact for the single-link case that the closed-form migration
models assume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import simpy

#: Bytes below which a transfer is considered complete (guards float rounding).
_DONE_EPS_BYTES = 1e-3


@dataclass
class Transfer:
    """One transfer in flight.

    Attributes:
        links: Indices of the links it crosses.
        weight: Its share weight on each link.
        size_bytes: Total bytes to move.
        remaining_bytes: Bytes still to move.
        started_s: When it started.
        done: Event triggered (with the transfer itself) when the last byte arrives.
        tag: Free-form label for accounting ("migration", "snapshot").
    """

    links: tuple[int, ...]
    weight: float
    size_bytes: float
    remaining_bytes: float
    started_s: float
    done: simpy.Event
    tag: str
    finished_s: float = float("nan")
    rate_bps: float = 0.0


class SharedNetwork:
    """All links of the twin and the transfers on them, advanced by one SimPy process."""

    def __init__(self, env: simpy.Environment, capacities_bps: Sequence[float], names: Sequence[str]):
        self.env = env
        self.capacity_Bps = np.asarray(capacities_bps, dtype=np.float64) / 8.0
        self.names = tuple(names)
        self.active: list[Transfer] = []
        self.bytes_delivered: dict[str, float] = {}
        self._last_s = env.now
        self._changed = env.event()
        env.process(self._run())

    def link_index(self, name: str) -> int:
        """Index of the link called ``name``."""
        return self.names.index(name)

    def start(self, links: Sequence[int], size_bytes: float, *, weight: float = 1.0, tag: str = "") -> Transfer:
        """Start moving ``size_bytes`` across ``links``; returns the transfer, whose ``done`` fires at the end."""
        self._advance()
        t = Transfer(
            links=tuple(int(x) for x in links),
            weight=float(weight),
            size_bytes=float(size_bytes),
            remaining_bytes=float(size_bytes),
            started_s=self.env.now,
            done=self.env.event(),
            tag=tag,
        )
        if t.remaining_bytes <= _DONE_EPS_BYTES or not t.links:
            self._finish(t)
            return t
        self.active.append(t)
        self._poke()
        return t

    def cancel(self, transfer: Transfer) -> None:
        """Stop a transfer; the bytes it already moved stay counted, its event never fires."""
        self._advance()
        if transfer in self.active:
            self.active.remove(transfer)
            self._poke()

    def rates_Bps(self) -> np.ndarray:
        """Current rate (bytes/s) of each active transfer under weighted fair sharing."""
        n = len(self.active)
        if n == 0:
            return np.zeros(0)
        width = max(len(t.links) for t in self.active)
        links = np.full((n, width), -1, dtype=np.int64)
        for i, t in enumerate(self.active):
            links[i, : len(t.links)] = t.links
        w = np.fromiter((t.weight for t in self.active), dtype=np.float64, count=n)
        valid = links >= 0
        safe = np.where(valid, links, 0)
        per_link = np.bincount(safe[valid], weights=np.broadcast_to(w[:, None], links.shape)[valid],
                               minlength=len(self.capacity_Bps))
        share = np.where(valid, self.capacity_Bps[safe] * w[:, None] / np.where(valid, per_link[safe], 1.0), np.inf)
        return share.min(axis=1)

    def _poke(self) -> None:
        if not self._changed.triggered:
            self._changed.succeed()

    def _advance(self) -> None:
        """Move every active transfer forward to ``env.now`` at its current rate."""
        dt = self.env.now - self._last_s
        self._last_s = self.env.now
        if dt <= 0 or not self.active:
            return
        rates = self.rates_Bps()
        remaining = np.fromiter((t.remaining_bytes for t in self.active), dtype=np.float64, count=len(self.active))
        moved = np.minimum(remaining, rates * dt)
        for t, left, m in zip(self.active, (remaining - moved).tolist(), moved.tolist(), strict=True):
            t.remaining_bytes = left
            self.bytes_delivered[t.tag] = self.bytes_delivered.get(t.tag, 0.0) + m

    def _finish(self, t: Transfer) -> None:
        t.remaining_bytes = 0.0
        t.finished_s = self.env.now
        t.done.succeed(t)

    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            if not self.active:
                self._changed = env.event()
                yield self._changed
                continue
            rates = self.rates_Bps()
            for t, r in zip(self.active, rates, strict=True):
                t.rate_bps = r * 8.0
            remaining = np.array([t.remaining_bytes for t in self.active])
            wait = float(np.min(remaining / rates))
            self._changed = env.event()
            yield env.timeout(max(wait, 0.0)) | self._changed
            self._advance()
            # Done when the bytes left would take less time than the clock can resolve at this
            # instant (at t ~ 1e6 s a float cannot step by less than ~1e-10 s).
            time_eps = max(1e-9, abs(env.now) * 1e-12)
            rates = self.rates_Bps()
            done_mask = [
                t.remaining_bytes <= _DONE_EPS_BYTES * max(1.0, t.weight) or t.remaining_bytes <= r * time_eps
                for t, r in zip(self.active, rates, strict=True)
            ]
            if any(done_mask):
                finished = [t for t, d in zip(self.active, done_mask, strict=True) if d]
                self.active = [t for t, d in zip(self.active, done_mask, strict=True) if not d]
                for t in finished:
                    self.bytes_delivered[t.tag] = self.bytes_delivered.get(t.tag, 0.0) + t.remaining_bytes
                    self._finish(t)
