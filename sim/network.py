"""Transfers over shared links: weighted fair sharing, recomputed whenever a transfer starts or ends.

Every transfer (a migration's memory copy, a batch of snapshot deltas) crosses one or more links: the
source host's NIC egress, the destination host's NIC ingress, and for traffic between IVNs the
inter-IVN link. Each link divides its bandwidth among the transfers crossing it in proportion to their
weights (a batch of ``k`` snapshots weighs ``k``); a transfer moves at the smallest share it gets on
any of its links. This is the classic processor-sharing approximation of TCP fairness: cheap enough
to recompute on every change, and exact for the single-link case that the closed-form migration
models assume.

Active transfers are kept as columns (links, weight, remaining bytes, rate, tag) in preallocated
arrays whose capacity doubles, one slot per transfer in start order; a transfer knows its slot, so
cancelling one does not search. The network's one SimPy process wakes at the next completion or at
a change, and each wake-up is a single compiled kernel (:func:`_tick_kernel`): move every transfer
forward, credit the bytes per tag, retire the finished ones, refresh the shares, and find the next
completion. A consolidation round that starts thousands of migrations at once, or a long run with
tens of thousands of wake-ups, thus pays one kernel call per event, not a dozen numpy calls or a
Python loop over every transfer.

Shares are refreshed incrementally: each link keeps the running total of the weights crossing it,
and only transfers on a link that gained or lost a transfer get a new share. With integer weights
(all callers use 1 or a batch size) those totals are exact, so the shares are bit for bit those of
a from-scratch recompute; a fractional weight switches to the from-scratch recompute for good.
Finished and cancelled slots are only marked dead (they cross no link, so they take no share) and
are squeezed out, keeping start order, once they are a third of the slots. Start order keeps every
floating-point sum in the same order, so results do not depend on when slots are compacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import simpy

#: Bytes below which a transfer is considered complete (guards float rounding).
_DONE_EPS_BYTES = 1e-3

#: Most links one transfer may cross (source NIC, inter-IVN link, store or destination NIC, ...).
MAX_LINKS = 4

#: Dead slots tolerated before compaction (compaction also waits until they are a third of the slots).
_COMPACT_MIN_DEAD = 64

#: Largest weight kept in running link totals: sums of integers this small are exact in float64.
_EXACT_MAX_WEIGHT = 2.0**32


@numba.njit(cache=True)  # type: ignore[misc]
def _shares_into(
    n: int, links: np.ndarray, weight: np.ndarray, capacity_Bps: np.ndarray, per_link: np.ndarray, rates: np.ndarray
) -> None:
    """Fair shares of slots ``[0, n)`` into ``rates``, from scratch; link weight totals are summed in slot order.

    On a link, a transfer gets ``capacity * w / sum of weights``; its rate is its smallest share over
    the links it crosses (``inf`` when it crosses none, as a dead slot does).
    """
    width = links.shape[1]
    per_link[:] = 0.0
    for i in range(n):
        for j in range(width):
            link = links[i, j]
            if link >= 0:
                per_link[link] += weight[i]
    for i in range(n):
        best = np.inf
        for j in range(width):
            link = links[i, j]
            if link >= 0:
                share = capacity_Bps[link] * weight[i] / per_link[link]
                if share < best:
                    best = share
        rates[i] = best


@numba.njit(cache=True)  # type: ignore[misc]
def _join(
    start: int, end: int, links: np.ndarray, weight: np.ndarray, per_link: np.ndarray, touched: np.ndarray
) -> None:
    """Add slots ``[start, end)`` to their links' weight totals and mark those links as changed."""
    for i in range(start, end):
        for j in range(links.shape[1]):
            link = links[i, j]
            if link >= 0:
                per_link[link] += weight[i]
                touched[link] = True


@numba.njit(cache=True)  # type: ignore[misc]
def _leave(i: int, links: np.ndarray, weight: np.ndarray, per_link: np.ndarray, touched: np.ndarray) -> None:
    """Take slot ``i`` off its links (weight totals down, links marked as changed); it then crosses none."""
    for j in range(links.shape[1]):
        link = links[i, j]
        if link >= 0:
            per_link[link] -= weight[i]
            touched[link] = True
            links[i, j] = -1


@numba.njit(cache=True)  # type: ignore[misc]
def _refresh(
    n: int,
    links: np.ndarray,
    weight: np.ndarray,
    remaining: np.ndarray,
    dead: np.ndarray,
    rates: np.ndarray,
    capacity_Bps: np.ndarray,
    per_link: np.ndarray,
    touched: np.ndarray,
    exact: bool,
) -> float:
    """Bring ``rates`` up to date after transfers joined or left the links marked in ``touched``.

    With ``exact`` (every weight so far a small integer), the running link totals kept by
    :func:`_join`/:func:`_leave` equal a fresh sum in any order, so only the live slots that cross a
    changed link get a new share, bit for bit what a full recompute would give them. Otherwise
    everything is recomputed from scratch, summing in slot order. Returns the time until the next
    live slot ends at the new rates (``inf`` if none is live), found in the same pass.
    """
    if not exact:
        _shares_into(n, links, weight, capacity_Bps, per_link, rates)
    width = links.shape[1]
    wait = np.inf
    for i in range(n):
        if dead[i]:
            continue
        if exact:
            # A slot's unused link columns hold -1, which reads touched's spare last entry (never set).
            hit = False
            for j in range(width):
                hit |= touched[links[i, j]]
            if hit:
                best = np.inf
                for j in range(width):
                    link = links[i, j]
                    if link >= 0:
                        share = capacity_Bps[link] * weight[i] / per_link[link]
                        if share < best:
                            best = share
                rates[i] = best
        left = remaining[i] / rates[i]
        if left < wait:
            wait = left
    touched[:] = False
    return wait


@numba.njit(cache=True)  # type: ignore[misc]
def _next_wait(n: int, remaining: np.ndarray, dead: np.ndarray, rates: np.ndarray) -> float:
    """Time until the next live slot ends at its current rate (``inf`` if none is live)."""
    wait = np.inf
    for i in range(n):
        if not dead[i]:
            left = remaining[i] / rates[i]
            if left < wait:
                wait = left
    return wait


@numba.njit(cache=True)  # type: ignore[misc]
def _credit(per_tag: np.ndarray, delivered: np.ndarray, credited: np.ndarray) -> None:
    """Credit the bytes moved, per tag; a tag that moved nothing is left untouched.

    (A tag shows in ``bytes_delivered`` only once something was credited to it.)
    """
    for k in range(per_tag.shape[0]):
        if per_tag[k] != 0.0:
            delivered[k] += per_tag[k]
            credited[k] = True


@numba.njit(cache=True)  # type: ignore[misc]
def _advance_kernel(
    n: int,
    links: np.ndarray,
    weight: np.ndarray,
    remaining: np.ndarray,
    tag: np.ndarray,
    dead: np.ndarray,
    rates: np.ndarray,
    capacity_Bps: np.ndarray,
    per_link: np.ndarray,
    touched: np.ndarray,
    exact: bool,
    delivered: np.ndarray,
    credited: np.ndarray,
    dt: float,
    rates_ok: bool,
) -> None:
    """Move every live slot forward by ``dt`` at its current fair share (refreshed first if stale)."""
    if not rates_ok:
        _refresh(n, links, weight, remaining, dead, rates, capacity_Bps, per_link, touched, exact)
    per_tag = np.zeros(delivered.shape[0])
    for i in range(n):
        if dead[i]:
            continue
        left = remaining[i]
        moved = rates[i] * dt
        if left < moved:
            moved = left
        remaining[i] = left - moved
        per_tag[tag[i]] += moved
    _credit(per_tag, delivered, credited)


@numba.njit(cache=True)  # type: ignore[misc]
def _tick_kernel(
    n: int,
    links: np.ndarray,
    weight: np.ndarray,
    remaining: np.ndarray,
    tag: np.ndarray,
    dead: np.ndarray,
    rates: np.ndarray,
    capacity_Bps: np.ndarray,
    per_link: np.ndarray,
    touched: np.ndarray,
    exact: bool,
    delivered: np.ndarray,
    credited: np.ndarray,
    dt: float,
    time_eps: float,
    rates_ok: bool,
    detect: bool,
    done_idx: np.ndarray,
    done_rate: np.ndarray,
    done_left: np.ndarray,
) -> tuple[int, float]:
    """One wake-up of the network: advance, retire what finished, re-share, and find the next completion.

    With ``detect``: moves live slots forward by ``dt`` (when positive), then retires every live slot
    with (almost) nothing left, crediting its last bytes; their indices, last rates and last bytes go
    to ``done_idx``/``done_rate``/``done_left``. A slot is done when what is left is below
    ``_DONE_EPS_BYTES`` (scaled by weight) or would take less than ``time_eps`` seconds, the clock's
    resolution at this instant. Rates are refreshed if they were stale on entry (before anything
    else, so the move and the test use the shares of the current set) and again if something
    finished. Without ``detect`` only the rates are refreshed. One pass over the slots does the move,
    the test and, when nothing finished, the search for the next completion. Returns the number of
    slots retired and the time until the next live slot ends (``inf`` if none is live).
    """
    if not rates_ok:
        wait = _refresh(n, links, weight, remaining, dead, rates, capacity_Bps, per_link, touched, exact)
        if not detect:
            return 0, wait
    elif not detect:
        return 0, _next_wait(n, remaining, dead, rates)
    n_done = 0
    wait = np.inf
    per_tag = np.zeros(delivered.shape[0])
    move = dt > 0.0
    for i in range(n):
        if dead[i]:
            continue
        left = remaining[i]
        rate = rates[i]
        if move:
            moved = rate * dt
            if left < moved:
                moved = left
            left = left - moved
            remaining[i] = left
            per_tag[tag[i]] += moved
        if left <= _DONE_EPS_BYTES * max(1.0, weight[i]) or left <= rate * time_eps:
            done_idx[n_done] = i
            done_rate[n_done] = rate
            done_left[n_done] = left
            n_done += 1
            dead[i] = True
            _leave(i, links, weight, per_link, touched)
            remaining[i] = 0.0
            rates[i] = np.inf
        else:
            left = left / rate
            if left < wait:
                wait = left
    # Bytes moved first, then each finished slot's last bytes in slot order (the order of the sums).
    _credit(per_tag, delivered, credited)
    for d in range(n_done):
        k = tag[done_idx[d]]
        delivered[k] += done_left[d]
        credited[k] = True
    if n_done:
        wait = _refresh(n, links, weight, remaining, dead, rates, capacity_Bps, per_link, touched, exact)
    return n_done, wait


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
        rate_bps: The rate it had when it finished (bits/s).
        remaining_bytes: Bytes left: its size while in flight, 0 once finished, what it had not sent
            when cancelled (the network's columns hold the live figure).
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
    #: Its slot in the network's columns while in flight (-1 before it joins them and once retired).
    slot: int = field(default=-1, repr=False, compare=False)


class SharedNetwork:
    """All links of the twin and the transfers on them, advanced by one SimPy process."""

    def __init__(self, env: simpy.Environment, capacities_bps: Sequence[float], names: Sequence[str]):
        self.env = env
        self.capacity_Bps = np.asarray(capacities_bps, dtype=np.float64) / 8.0
        self.names = tuple(names)
        #: Bytes every started transfer set out to send, per tag: started = delivered + lost + in flight.
        self.bytes_started: dict[str, float] = {}
        #: Bytes of cancelled transfers that never arrived, per tag (delivered + lost = sent).
        self.bytes_lost: dict[str, float] = {}
        self._tags: list[str] = []
        self._tag_index: dict[str, int] = {}
        # Per tag: bytes delivered so far, and whether anything was ever credited (only those show).
        self._delivered = np.zeros(0)
        self._credited = np.zeros(0, dtype=np.bool_)
        self._n = 0  # slots in use, live or dead, in start order
        self._n_alive = 0
        self._objs: list[Transfer | None] = []  # the transfer in each used slot (None once retired)
        self._links = np.zeros((0, MAX_LINKS), dtype=np.int64)
        self._weight = np.zeros(0)
        self._remaining = np.zeros(0)
        self._rates = np.zeros(0)
        self._tag = np.zeros(0, dtype=np.int64)
        self._dead = np.zeros(0, dtype=np.bool_)
        self._grow(16)
        self._per_link = np.zeros(len(self.capacity_Bps))  # weight total of the live slots on each link
        # Links changed since the last refresh, plus a spare last entry, never set, that link -1 reads.
        self._touched = np.zeros(len(self.capacity_Bps) + 1, dtype=np.bool_)
        # Whether every weight so far was a small integer, so the running link totals are exact sums.
        self._exact = True
        self._rates_ok = True  # whether _rates[:n] are the fair shares of the current set
        self._new: list[Transfer] = []  # started since the columns were last extended
        self._last_s = env.now
        self._changed = env.event()
        env.process(self._run())

    @property
    def bytes_delivered(self) -> dict[str, float]:
        """Bytes that arrived, per tag, as of the network's last advance (a fresh dict on every read).

        :meth:`bytes_in_flight` advances to now first, so read it before this one for a consistent
        ``started = delivered + lost + in flight``.
        """
        return {tag: float(self._delivered[k]) for k, tag in enumerate(self._tags) if self._credited[k]}

    @property
    def active(self) -> list[Transfer]:
        """Transfers in flight, oldest first."""
        self._extend()
        return [t for t in self._objs if t is not None]

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
        k = self._tag_index.get(tag)
        if k is None:
            k = self._add_tag(tag)
        if t.size_bytes <= _DONE_EPS_BYTES or not t.links:
            self._delivered[k] += t.size_bytes
            self._credited[k] = True
            self._finish(t)
            return t
        if len(t.links) > MAX_LINKS:
            raise ValueError(f"a transfer may cross at most {MAX_LINKS} links, got {len(t.links)}")
        if self._exact and not (t.weight.is_integer() and abs(t.weight) <= _EXACT_MAX_WEIGHT):
            self._exact = False
        # Copied into the columns in one go when they are next read: a consolidation round starts
        # thousands of transfers at one instant.
        self._new.append(t)
        self._rates_ok = False
        self._poke()
        return t

    def _add_tag(self, tag: str) -> int:
        k = len(self._tags)
        self._tags.append(tag)
        self._tag_index[tag] = k
        self._delivered = np.append(self._delivered, 0.0)
        self._credited = np.append(self._credited, False)
        return k

    def _grow(self, capacity: int) -> None:
        """Reallocate the columns to hold ``capacity`` slots, keeping the used ones."""
        n = self._n

        def grown(old: np.ndarray, fill: float | int | bool) -> np.ndarray:
            new = np.full((capacity, *old.shape[1:]), fill, dtype=old.dtype)
            new[:n] = old[:n]
            return new

        self._links = grown(self._links, -1)
        self._weight = grown(self._weight, 0.0)
        self._remaining = grown(self._remaining, 0.0)
        self._rates = grown(self._rates, np.inf)
        self._tag = grown(self._tag, 0)
        self._dead = grown(self._dead, True)
        self._done_idx = np.zeros(capacity, dtype=np.int64)
        self._done_rate = np.zeros(capacity)
        self._done_left = np.zeros(capacity)

    def _extend(self) -> None:
        """Move the transfers started since the last read into the columns, in start order."""
        if not self._new:
            return
        new, self._new = self._new, []
        n, k = self._n, len(new)
        end = n + k
        if end > len(self._weight):
            self._grow(max(end, 2 * len(self._weight)))
        # Unused rows hold -1 in every link column (grown that way, reset by compaction), so only each
        # transfer's own links are written; element writes beat building arrays for the usual handful.
        links, weight, remaining, tags, index = self._links, self._weight, self._remaining, self._tag, self._tag_index
        for i, t in enumerate(new, n):
            t.slot = i
            links[i, : len(t.links)] = t.links
            weight[i] = t.weight
            remaining[i] = t.size_bytes
            tags[i] = index[t.tag]
        self._dead[n:end] = False
        _join(n, end, self._links, self._weight, self._per_link, self._touched)
        self._objs.extend(new)
        self._n = end
        self._n_alive += k
        self._rates_ok = False

    def cancel(self, transfer: Transfer) -> None:
        """Stop a transfer; the bytes it already moved stay counted, its event never fires.

        The bytes it had not moved yet are counted in :attr:`bytes_lost`, so every byte a transfer
        set out to send is either delivered or lost (a host failure cuts its transfers). Cancelling a
        transfer that already finished or was cancelled does nothing.
        """
        self._advance()
        self._extend()  # a transfer started at this very instant can be cut too
        i = transfer.slot
        if i < 0 or self._objs[i] is not transfer:
            return
        left = float(self._remaining[i])
        self.bytes_lost[transfer.tag] = self.bytes_lost.get(transfer.tag, 0.0) + left
        transfer.remaining_bytes = left
        self._dead[i] = True
        _leave(i, self._links, self._weight, self._per_link, self._touched)
        self._remaining[i] = 0.0
        self._rates[i] = np.inf
        self._objs[i] = None
        transfer.slot = -1
        self._n_alive -= 1
        self._rates_ok = False
        self._maybe_compact()
        self._poke()

    def rates_Bps(self) -> np.ndarray:
        """Current rate (bytes/s) of each used transfer slot under weighted fair sharing (``inf`` if retired).

        Slot ``i`` holds ``active``'s transfers in order, with retired slots in between; the array is
        the network's own, valid until the next change.
        """
        self._extend()
        n = self._n
        if not self._rates_ok:
            self._refresh()
        return self._rates[:n]

    def _refresh(self) -> None:
        _refresh(
            self._n,
            self._links,
            self._weight,
            self._remaining,
            self._dead,
            self._rates,
            self.capacity_Bps,
            self._per_link,
            self._touched,
            self._exact,
        )
        self._rates_ok = True

    def bytes_in_flight(self) -> dict[str, float]:
        """Bytes active transfers still have to send, per tag (after moving them up to now)."""
        self._advance()
        self._extend()
        n = self._n
        per_tag = np.bincount(self._tag[:n], weights=self._remaining[:n], minlength=len(self._tags))
        return {self._tags[k]: nbytes for k, nbytes in enumerate(per_tag.tolist()) if nbytes}

    def _poke(self) -> None:
        if not self._changed.triggered:
            self._changed.succeed()

    def _advance(self) -> None:
        """Move every active transfer forward to ``env.now`` at its current rate."""
        now = self.env.now
        dt = float(now - self._last_s)  # a float even on an integer clock: one compiled signature
        self._last_s = now
        if dt <= 0:
            return  # nothing moved; transfers started at this instant join the columns when read
        self._extend()
        if not self._n_alive:
            return
        _advance_kernel(
            self._n,
            self._links,
            self._weight,
            self._remaining,
            self._tag,
            self._dead,
            self._rates,
            self.capacity_Bps,
            self._per_link,
            self._touched,
            self._exact,
            self._delivered,
            self._credited,
            dt,
            self._rates_ok,
        )
        self._rates_ok = True

    def _maybe_compact(self) -> None:
        """Squeeze dead slots out, keeping start order, once they are a third of the slots.

        Waiting until a fixed fraction of the slots is dead keeps a burst of completions linear, not
        quadratic; every kernel pass walks the dead slots too, so that fraction is kept small.
        """
        n = self._n
        dead = n - self._n_alive
        if dead <= _COMPACT_MIN_DEAD or dead * 3 <= n:
            return
        keep = np.flatnonzero(~self._dead[:n])
        m = len(keep)
        for col in (self._links, self._weight, self._remaining, self._rates, self._tag):
            col[:m] = col[keep]
        self._dead[:m] = False
        self._dead[m:n] = True
        self._links[m:n] = -1
        self._remaining[m:n] = 0.0
        self._objs = [t for t in self._objs if t is not None]
        for i, t in enumerate(self._objs):
            t.slot = i  # type: ignore[union-attr]
        self._n = m

    def _finish(self, t: Transfer) -> None:
        t.remaining_bytes = 0.0
        t.finished_s = self.env.now
        t.done.succeed(t)

    def _tick(self, detect: bool) -> float:
        """Run the :func:`_tick_kernel` at ``env.now``, fire the finished transfers; returns the next wait."""
        if self._new:
            self._extend()
        now = self.env.now
        dt = 0.0
        if detect:
            dt = float(now - self._last_s)  # a float even on an integer clock: one compiled signature
            self._last_s = now
        # Done when the bytes left would take less time than the clock can resolve at this
        # instant (at t ~ 1e6 s a float cannot step by less than ~1e-10 s).
        time_eps = max(1e-9, abs(now) * 1e-12)
        n_done, wait = _tick_kernel(
            self._n,
            self._links,
            self._weight,
            self._remaining,
            self._tag,
            self._dead,
            self._rates,
            self.capacity_Bps,
            self._per_link,
            self._touched,
            self._exact,
            self._delivered,
            self._credited,
            dt,
            time_eps,
            self._rates_ok,
            detect,
            self._done_idx,
            self._done_rate,
            self._done_left,
        )
        self._rates_ok = True
        if n_done:
            objs = self._objs
            self._n_alive -= n_done
            for i, rate in zip(self._done_idx[:n_done].tolist(), self._done_rate[:n_done].tolist(), strict=True):
                t = objs[i]
                objs[i] = None
                t.slot = -1  # type: ignore[union-attr]
                t.rate_bps = rate * 8.0  # type: ignore[union-attr]
                self._finish(t)  # type: ignore[arg-type]
            self._maybe_compact()
        return wait

    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        # A wake-up on a change while nothing was in flight only works out the next wait; any other
        # wake-up first advances to now and retires what finished.
        detect = False
        while True:
            wait = self._tick(detect) if self._n_alive or self._new else np.inf
            self._changed = env.event()
            if not self._n_alive:
                yield self._changed
                detect = False
            else:
                yield env.timeout(max(wait, 0.0)) | self._changed
                detect = True
