"""Transfers over shared links: weighted fair sharing, recomputed whenever a transfer starts or ends.

Every transfer (a migration's memory copy, a batch of snapshot deltas) crosses one or more links: the
source host's NIC egress, the destination host's NIC ingress, and for traffic between IVNs the
inter-IVN link. Each link divides its bandwidth among the transfers crossing it in proportion to their
weights (a batch of ``k`` snapshots weighs ``k``); a transfer moves at the smallest share it gets on
any of its links. This is the classic processor-sharing approximation of TCP fairness: cheap enough
to recompute on every change, and exact for the single-link case that the closed-form migration
models assume.

Active transfers are kept as columns (links, weight, remaining bytes), so a consolidation round that
starts thousands of migrations at once costs a few numpy operations per event, not a Python loop
over every transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import simpy

#: Bytes below which a transfer is considered complete (guards float rounding).
_DONE_EPS_BYTES = 1e-3


@numba.njit(cache=True)  # type: ignore[misc]
def _fair_shares(links: np.ndarray, weight: np.ndarray, capacity_Bps: np.ndarray) -> np.ndarray:
    """Each transfer's rate under weighted fair sharing: its smallest share over the links it crosses.

    On a link, a transfer gets ``capacity * w / sum of weights`` (``inf`` when it crosses no link).
    Compiled because a burst of thousands of concurrent migrations recomputes this at every start and
    finish; the arithmetic is the same as the vectorised form it replaces, summed in transfer order.
    """
    n, width = links.shape
    per_link = np.zeros(capacity_Bps.shape[0])
    for i in range(n):
        for j in range(width):
            link = links[i, j]
            if link >= 0:
                per_link[link] += weight[i]
    out = np.empty(n)
    for i in range(n):
        best = np.inf
        for j in range(width):
            link = links[i, j]
            if link >= 0:
                share = capacity_Bps[link] * weight[i] / per_link[link]
                if share < best:
                    best = share
        out[i] = best
    return out


#: Most links one transfer may cross (source NIC, inter-IVN link, store or destination NIC, ...).
MAX_LINKS = 4


@dataclass
class Transfer:
    """One transfer.

    Attributes:
        links: Indices of the links it crosses.
        weight: Its share weight on each link.
        size_bytes: Total bytes to move.
        started_s: When it started.
        done: Event triggered (with the transfer itself) when the last byte arrives.
        tag: Label for accounting ("migration", "snapshot").
        finished_s: When the last byte arrived (NaN while in flight).
        rate_bps: The rate it had when it last changed (bits/s); a finished transfer keeps its last.
        remaining_bytes: Bytes left, refreshed whenever the network advances.
    """

    links: tuple[int, ...]
    weight: float
    size_bytes: float
    started_s: float
    done: simpy.Event
    tag: str
    finished_s: float = float("nan")
    rate_bps: float = 0.0
    remaining_bytes: float = 0.0


class SharedNetwork:
    """All links of the twin and the transfers on them, advanced by one SimPy process."""

    def __init__(self, env: simpy.Environment, capacities_bps: Sequence[float], names: Sequence[str]):
        self.env = env
        self.capacity_Bps = np.asarray(capacities_bps, dtype=np.float64) / 8.0
        self.names = tuple(names)
        self.bytes_delivered: dict[str, float] = {}
        #: Bytes every started transfer set out to send, per tag: started = delivered + lost + in flight.
        self.bytes_started: dict[str, float] = {}
        #: Bytes of cancelled transfers that never arrived, per tag (delivered + lost = sent).
        self.bytes_lost: dict[str, float] = {}
        self._tags: list[str] = []
        self._transfers: np.ndarray = np.empty(0, dtype=object)
        self._links = np.zeros((0, MAX_LINKS), dtype=np.int64)
        self._weight = np.zeros(0)
        self._remaining = np.zeros(0)
        self._tag = np.zeros(0, dtype=np.int64)
        self._dead = np.zeros(0, dtype=bool)  # finished or cancelled, waiting for the next compaction
        self._new: list[Transfer] = []  # started since the arrays were last extended
        self._rates: np.ndarray | None = None
        self._last_s = env.now
        self._changed = env.event()
        env.process(self._run())

    @property
    def active(self) -> list[Transfer]:
        """Transfers in flight, oldest first."""
        self._extend()
        return [t for t, dead in zip(self._transfers.tolist(), self._dead.tolist(), strict=True) if not dead]

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
            started_s=self.env.now,
            done=self.env.event(),
            tag=tag,
            remaining_bytes=float(size_bytes),
        )
        self.bytes_started[tag] = self.bytes_started.get(tag, 0.0) + t.size_bytes
        if t.size_bytes <= _DONE_EPS_BYTES or not t.links:
            self._credit(tag, t.size_bytes)
            self._finish(t)
            return t
        if len(t.links) > MAX_LINKS:
            raise ValueError(f"a transfer may cross at most {MAX_LINKS} links, got {len(t.links)}")
        if tag not in self._tags:
            self._tags.append(tag)
        # Appended to the arrays in one go when they are next read: a consolidation round starts
        # thousands of transfers at one instant, and growing the arrays one by one is quadratic.
        self._new.append(t)
        self._rates = None
        self._poke()
        return t

    def _extend(self) -> None:
        """Move the transfers started since the last read into the arrays, in start order."""
        if not self._new:
            return
        new, self._new = self._new, []
        rows = np.full((len(new), MAX_LINKS), -1, dtype=np.int64)
        for r, t in enumerate(new):
            rows[r, : len(t.links)] = t.links
        cells = np.empty(len(new), dtype=object)
        cells[:] = new
        self._transfers = np.concatenate([self._transfers, cells])
        self._links = np.concatenate([self._links, rows])
        self._weight = np.concatenate([self._weight, [t.weight for t in new]])
        self._remaining = np.concatenate([self._remaining, [t.size_bytes for t in new]])
        self._tag = np.concatenate([self._tag, np.array([self._tags.index(t.tag) for t in new], dtype=np.int64)])
        self._dead = np.concatenate([self._dead, np.zeros(len(new), dtype=bool)])
        self._rates = None

    def cancel(self, transfer: Transfer) -> None:
        """Stop a transfer; the bytes it already moved stay counted, its event never fires.

        The bytes it had not moved yet are counted in :attr:`bytes_lost`, so every byte a transfer
        set out to send is either delivered or lost (a host failure cuts its transfers).
        """
        self._advance()
        for i, t in enumerate(self._transfers.tolist()):
            if t is transfer and not self._dead[i]:
                left = float(self._remaining[i])
                self.bytes_lost[t.tag] = self.bytes_lost.get(t.tag, 0.0) + left
                t.remaining_bytes = left
                self._retire(np.array([i]))
                self._poke()
                return

    def rates_Bps(self) -> np.ndarray:
        """Current rate (bytes/s) of each transfer slot under weighted fair sharing (``inf`` if retired)."""
        self._extend()
        if self._rates is None:
            self._rates = self._compute_rates()
        return self._rates

    def _compute_rates(self) -> np.ndarray:
        if len(self._transfers) == 0:
            return np.zeros(0)
        return _fair_shares(self._links, self._weight, self.capacity_Bps)

    def _credit(self, tag: str, nbytes: float) -> None:
        self.bytes_delivered[tag] = self.bytes_delivered.get(tag, 0.0) + nbytes

    def bytes_in_flight(self) -> dict[str, float]:
        """Bytes active transfers still have to send, per tag (after moving them up to now)."""
        self._advance()
        out: dict[str, float] = {}
        for k, nbytes in enumerate(np.bincount(self._tag, weights=self._remaining, minlength=len(self._tags)).tolist()):
            if nbytes:
                out[self._tags[k]] = nbytes
        return out

    def _poke(self) -> None:
        if not self._changed.triggered:
            self._changed.succeed()

    def _advance(self) -> None:
        """Move every active transfer forward to ``env.now`` at its current rate."""
        dt = self.env.now - self._last_s
        self._last_s = self.env.now
        if dt <= 0:
            return  # nothing moved; transfers started at this instant join the arrays when read
        self._extend()
        if not len(self._transfers):
            return
        moved = np.minimum(self._remaining, self.rates_Bps() * dt)
        self._remaining = self._remaining - moved
        per_tag = np.bincount(self._tag, weights=moved, minlength=len(self._tags))
        for k, nbytes in enumerate(per_tag.tolist()):
            if nbytes:
                self._credit(self._tags[k], nbytes)

    def _retire(self, idx: np.ndarray) -> None:
        """Take finished or cancelled transfers out of the sharing; compact once half the slots are dead.

        A retired slot crosses no link (so it takes no share) and has nothing left to send; compacting
        only when dead slots outnumber live ones keeps a burst of completions linear, not quadratic.
        """
        self._dead[idx] = True
        self._links[idx] = -1
        self._remaining[idx] = 0.0
        self._transfers[idx] = None
        self._rates = None
        dead = int(self._dead.sum())
        if dead > 64 and dead * 2 > len(self._dead):
            keep = ~self._dead
            self._transfers = self._transfers[keep]
            self._links = self._links[keep]
            self._weight = self._weight[keep]
            self._remaining = self._remaining[keep]
            self._tag = self._tag[keep]
            self._dead = self._dead[keep]

    def _finish(self, t: Transfer) -> None:
        t.remaining_bytes = 0.0
        t.finished_s = self.env.now
        t.done.succeed(t)

    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            self._extend()
            alive = ~self._dead
            if not alive.any():
                self._changed = env.event()
                yield self._changed
                continue
            rates = self.rates_Bps()
            wait = float(np.min(self._remaining[alive] / rates[alive]))
            self._changed = env.event()
            yield env.timeout(max(wait, 0.0)) | self._changed
            self._advance()
            # Done when the bytes left would take less time than the clock can resolve at this
            # instant (at t ~ 1e6 s a float cannot step by less than ~1e-10 s).
            time_eps = max(1e-9, abs(env.now) * 1e-12)
            rates = self.rates_Bps()
            done = ~self._dead & (
                (self._remaining <= _DONE_EPS_BYTES * np.maximum(1.0, self._weight))
                | (self._remaining <= rates * time_eps)
            )
            if not done.any():
                continue
            idx = np.flatnonzero(done)
            finished = self._transfers[idx].tolist()
            leftovers = self._remaining[idx].tolist()
            last_rates = rates[idx].tolist()
            self._retire(idx)
            for t, left, rate in zip(finished, leftovers, last_rates, strict=True):
                self._credit(t.tag, left)
                t.rate_bps = rate * 8.0
                self._finish(t)
