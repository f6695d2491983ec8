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

import numpy as np
import simpy

#: Bytes below which a transfer is considered complete (guards float rounding).
_DONE_EPS_BYTES = 1e-3
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
        self._rates: np.ndarray | None = None
        self._last_s = env.now
        self._changed = env.event()
        env.process(self._run())

    @property
    def active(self) -> list[Transfer]:
        """Transfers in flight, oldest first."""
        return list(self._transfers.tolist())

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
        row = np.full((1, MAX_LINKS), -1, dtype=np.int64)
        row[0, : len(t.links)] = t.links
        if tag not in self._tags:
            self._tags.append(tag)
        cell = np.empty(1, dtype=object)
        cell[0] = t
        self._transfers = np.concatenate([self._transfers, cell])
        self._links = np.concatenate([self._links, row])
        self._weight = np.append(self._weight, t.weight)
        self._remaining = np.append(self._remaining, t.size_bytes)
        self._tag = np.append(self._tag, self._tags.index(tag))
        self._rates = None
        self._poke()
        return t

    def cancel(self, transfer: Transfer) -> None:
        """Stop a transfer; the bytes it already moved stay counted, its event never fires.

        The bytes it had not moved yet are counted in :attr:`bytes_lost`, so every byte a transfer
        set out to send is either delivered or lost (a host failure cuts its transfers).
        """
        self._advance()
        for i, t in enumerate(self._transfers.tolist()):
            if t is transfer:
                left = float(self._remaining[i])
                self.bytes_lost[t.tag] = self.bytes_lost.get(t.tag, 0.0) + left
                t.remaining_bytes = left
                keep = np.ones(len(self._transfers), dtype=bool)
                keep[i] = False
                self._compact(keep)
                self._poke()
                return

    def rates_Bps(self) -> np.ndarray:
        """Current rate (bytes/s) of each active transfer under weighted fair sharing."""
        if self._rates is None:
            self._rates = self._compute_rates()
        return self._rates

    def _compute_rates(self) -> np.ndarray:
        n = len(self._transfers)
        if n == 0:
            return np.zeros(0)
        links = self._links
        valid = links >= 0
        safe = np.where(valid, links, 0)
        w = np.broadcast_to(self._weight[:, None], links.shape)
        per_link = np.bincount(safe[valid], weights=w[valid], minlength=len(self.capacity_Bps))
        denom = np.where(valid, per_link[safe], 1.0)
        share = np.where(valid, self.capacity_Bps[safe] * w / denom, np.inf)
        return share.min(axis=1)

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
        if dt <= 0 or not len(self._transfers):
            return
        moved = np.minimum(self._remaining, self.rates_Bps() * dt)
        self._remaining = self._remaining - moved
        per_tag = np.bincount(self._tag, weights=moved, minlength=len(self._tags))
        for k, nbytes in enumerate(per_tag.tolist()):
            if nbytes:
                self._credit(self._tags[k], nbytes)

    def _compact(self, keep: np.ndarray) -> None:
        self._transfers = self._transfers[keep]
        self._links = self._links[keep]
        self._weight = self._weight[keep]
        self._remaining = self._remaining[keep]
        self._tag = self._tag[keep]
        self._rates = None

    def _finish(self, t: Transfer) -> None:
        t.remaining_bytes = 0.0
        t.finished_s = self.env.now
        t.done.succeed(t)

    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            if not len(self._transfers):
                self._changed = env.event()
                yield self._changed
                continue
            rates = self.rates_Bps()
            wait = float(np.min(self._remaining / rates))
            self._changed = env.event()
            yield env.timeout(max(wait, 0.0)) | self._changed
            self._advance()
            # Done when the bytes left would take less time than the clock can resolve at this
            # instant (at t ~ 1e6 s a float cannot step by less than ~1e-10 s).
            time_eps = max(1e-9, abs(env.now) * 1e-12)
            rates = self.rates_Bps()
            done = (self._remaining <= _DONE_EPS_BYTES * np.maximum(1.0, self._weight)) | (
                self._remaining <= rates * time_eps
            )
            if not done.any():
                continue
            idx = np.flatnonzero(done)
            finished = self._transfers[idx].tolist()
            leftovers = self._remaining[idx].tolist()
            last_rates = rates[idx].tolist()
            self._compact(~done)
            for t, left, rate in zip(finished, leftovers, last_rates, strict=True):
                self._credit(t.tag, left)
                t.rate_bps = rate * 8.0
                self._finish(t)
