"""Compiled placement kernels: fit test, target choice, overload relief and under-load evacuation.

A consolidation round is a long chain of small, *dependent* decisions: every placement changes the
load the next one sees, and an under-load evacuation that fails half-way is undone. Done with numpy,
each of those hundreds of steps per tick pays a fixed series of array calls (tens of microseconds);
compiled with numba, a step is one pass over the hosts with no allocation. The kernels here work on
flat arrays of fixed dtypes (float64, int64, bool), grouped in two :class:`~typing.NamedTuple` s so
each function compiles to exactly one signature and is cached on disk (``cache=True``).

The building blocks are separate so that other policies can compose them (CloudSim's THR/IQR/MAD/LR
detectors with MMT/MC selection decide *who leaves* outside the hot loop, in Python or their own
kernels, and hand the ordered evictions to :func:`place_evicted` and the candidate order to
:func:`evacuate_underloaded`):

* :func:`load_hosts` fills the working copies of host load, headroom, free memory and power;
* :func:`evict_by_key` is the static-threshold selection: per overloaded host, instances in key order
  until the host is back under the threshold;
* :func:`place_evicted` places evicted instances (own IVN first, then permitted others);
* :func:`evacuate_underloaded` empties under-loaded hosts all-or-nothing, undoing failed attempts;
* :func:`threshold_round` chains them into :class:`~policies.threshold_policy.ThresholdPolicy`'s round.

Arithmetic is written operation for operation like the numpy implementation it replaces (sequential
sums, power from per-segment intercept and slope), so plans are bit-identical to it, ties included.
No ``fastmath``: reassociation would change which of two equal hosts wins. Loops read columns from
local variables, never ``tuple.field[i]``: each field read of a NamedTuple inside a loop costs a
reference-count increment and decrement, which made the host scan 60x slower.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray

FIT_TOLERANCE_MIPS = 1e-6
"""Slack in the headroom test, so a host filled exactly to the threshold still counts as fitting."""

FIRST_FIT = 0
"""Kernel id of the target rule "lowest-indexed fitting host"."""
LEAST_LOADED = 1
"""Kernel id of the target rule "lowest utilisation after placement"."""
POWER_AWARE_BEST_FIT = 2
"""Kernel id of PABFD: "smallest power increase"."""

OVERLOAD = 0
"""Reason code of a move that relieves an overloaded host."""
UNDERLOAD = 1
"""Reason code of a move that empties an under-loaded host."""

NO_UNDERLOAD = -1.0
"""``underload_util`` value that disables consolidation in :func:`threshold_round`."""

UNLIMITED_PES = np.iinfo(np.int64).max
"""PE count of a host when the fleet gives none: only MIPS then limit placement."""

# Constants passed to other kernels as numpy scalars, not Python literals: numba would compile a
# separate specialisation of the callee for each literal value (more cold-start JIT time for nothing).
_SAME_IVN = np.bool_(True)
_OTHER_IVNS = np.bool_(False)
_OVERLOAD = np.int64(OVERLOAD)
_UNDERLOAD = np.int64(UNDERLOAD)


class Hosts(NamedTuple):
    """Host columns (copied from the fleet) and the working state a round updates in place.

    Attributes:
        ivn: IVN index of each host.
        capacity_mips: Total CPU capacity.
        pe_mips: Capacity of one processing element.
        pes: Processing elements of each host (:data:`UNLIMITED_PES` when unknown).
        ram_bytes: Memory of each host.
        available: False for failed or drained hosts.
        power_w: SPECpower tables, shape (hosts, points), power at 0 %, ..., 100 %.
        load_mips: Working CPU request (filled by :func:`load_hosts`).
        headroom_mips: CPU that can still be added before the round's utilisation limit.
        ram_free_bytes: Working free memory.
        power_now_w: Power at the working load, so PABFD only interpolates the "after".
        steps_per_mips: Table steps per MIPS (``(points - 1) / capacity``).
        intercept_w: Power segment ``k`` of host ``h`` is ``intercept_w[h, k] + slope_w[h, k] * x``
            with ``x`` = utilisation times table steps; the last segment is flat at the 100 % figure.
        slope_w: See ``intercept_w``.
    """

    ivn: IntArray
    capacity_mips: FloatArray
    pe_mips: FloatArray
    pes: IntArray
    ram_bytes: FloatArray
    available: BoolArray
    power_w: FloatArray
    load_mips: FloatArray
    headroom_mips: FloatArray
    ram_free_bytes: FloatArray
    power_now_w: FloatArray
    steps_per_mips: FloatArray
    intercept_w: FloatArray
    slope_w: FloatArray


class Instances(NamedTuple):
    """Instance columns (copied from the fleet); read-only to the kernels.

    Attributes:
        host: Host index of each instance, ``-1`` when not placed.
        request_mips: CPU requested now.
        per_pe_mips: Request divided by the instance's PEs: what one host PE must deliver.
        pes: Processing elements of each instance.
        ram_bytes: Memory the instance occupies.
        in_migration: True while a migration of the instance is in progress.
        allowed_ivns: Permitted target IVNs, shape (instances, IVNs); all true when unrestricted.
    """

    host: IntArray
    request_mips: FloatArray
    per_pe_mips: FloatArray
    pes: IntArray
    ram_bytes: FloatArray
    in_migration: BoolArray
    allowed_ivns: BoolArray


class Moves(NamedTuple):
    """Output buffers, one row per planned move (capacity: one per instance; none moves twice).

    Attributes:
        instance: Instance index.
        source: Host it leaves.
        target: Host it goes to.
        reason: :data:`OVERLOAD` or :data:`UNDERLOAD`.
        source_util: Utilisation of the source host at the start of the round (the risk).
    """

    instance: IntArray
    source: IntArray
    target: IntArray
    reason: IntArray
    source_util: FloatArray


def fleet_arrays(fleet: FleetSnapshot) -> tuple[Hosts, Instances, Moves]:
    """Copy a fleet into kernel arrays of fixed dtype and allocate the working state and outputs.

    Every array is a fresh, writable, C-contiguous copy, whatever the fleet holds (read-only views,
    int32 indices, Fortran order): numba compiles one specialisation per array layout and
    writability, so normalising here keeps each kernel at a single cached signature.
    """
    n_hosts, n_inst = fleet.n_hosts, fleet.n_instances
    table = np.array(fleet.host_power_w, dtype=np.float64, order="C").reshape(n_hosts, -1)
    hosts = Hosts(
        ivn=np.array(fleet.host_ivn, dtype=np.int64),
        capacity_mips=np.array(fleet.host_cpu_capacity_mips, dtype=np.float64),
        pe_mips=np.array(fleet.host_pe_mips, dtype=np.float64),
        pes=(
            np.full(n_hosts, UNLIMITED_PES, dtype=np.int64)
            if fleet.host_pes is None
            else np.array(fleet.host_pes, dtype=np.int64)
        ),
        ram_bytes=np.array(fleet.host_ram_bytes, dtype=np.float64),
        available=np.array(fleet.host_available, dtype=np.bool_),
        power_w=table,
        load_mips=np.empty(n_hosts),
        headroom_mips=np.empty(n_hosts),
        ram_free_bytes=np.empty(n_hosts),
        power_now_w=np.empty(n_hosts),
        steps_per_mips=np.empty(n_hosts),
        intercept_w=np.empty_like(table),
        slope_w=np.empty_like(table),
    )
    request = np.array(fleet.instance_cpu_request_mips, dtype=np.float64)
    pes = np.ones(n_inst, dtype=np.int64) if fleet.instance_pes is None else np.array(fleet.instance_pes, np.int64)
    allowed = fleet.instance_allowed_ivns
    instances = Instances(
        host=np.array(fleet.instance_host, dtype=np.int64),
        request_mips=request,
        per_pe_mips=request / pes,
        pes=pes,
        ram_bytes=np.array(fleet.instance_ram_bytes, dtype=np.float64),
        in_migration=np.array(fleet.instance_in_migration, dtype=np.bool_),
        allowed_ivns=(
            np.ones((n_inst, len(fleet.ivn_names)), dtype=np.bool_)
            if allowed is None
            else np.array(allowed, dtype=np.bool_, order="C").reshape(n_inst, len(fleet.ivn_names))
        ),
    )
    moves = Moves(
        instance=np.empty(n_inst, dtype=np.int64),
        source=np.empty(n_inst, dtype=np.int64),
        target=np.empty(n_inst, dtype=np.int64),
        reason=np.empty(n_inst, dtype=np.int64),
        source_util=np.empty(n_inst),
    )
    return hosts, instances, moves


@numba.njit(cache=True)  # type: ignore[misc]
def stable_argsort(keys: FloatArray) -> IntArray:
    """Return the indices that sort ``keys`` ascending, ties in index order, NaN last.

    What ``np.argsort(keys, kind="stable")`` returns, as a plain bottom-up merge sort: numba's own
    argsort costs seconds of compile time per dtype, which every cold start would pay.
    """
    n = keys.shape[0]
    order = np.arange(n)
    buffer = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            a, b, k = lo, mid, lo
            while a < mid and b < hi:
                x, y = keys[order[b]], keys[order[a]]
                if x < y or (np.isnan(y) and not np.isnan(x)):  # the right run wins only if strictly first
                    buffer[k] = order[b]
                    b += 1
                else:
                    buffer[k] = order[a]
                    a += 1
                k += 1
            while a < mid:
                buffer[k] = order[a]
                a += 1
                k += 1
            while b < hi:
                buffer[k] = order[b]
                b += 1
                k += 1
        order, buffer = buffer, order
        width *= 2
    return order


@numba.njit(cache=True)  # type: ignore[misc]
def load_hosts(hosts: Hosts, instances: Instances, limit_util: float) -> None:
    """Fill the working state from the instances' placement; ``limit_util`` caps every target.

    Sums run in instance order, as ``np.bincount`` does, so loads equal the numpy computation bit
    for bit.
    """
    n_hosts = hosts.load_mips.shape[0]
    top = hosts.power_w.shape[1] - 1
    ram_used = np.zeros(n_hosts)
    load, inst_host, request, ram = hosts.load_mips, instances.host, instances.request_mips, instances.ram_bytes
    load[:] = 0.0
    for i in range(inst_host.shape[0]):
        h = inst_host[i]
        if h >= 0:
            load[h] += request[i]
            ram_used[h] += ram[i]
    for h in range(n_hosts):
        hosts.headroom_mips[h] = limit_util * hosts.capacity_mips[h] - hosts.load_mips[h]
        hosts.ram_free_bytes[h] = hosts.ram_bytes[h] - ram_used[h]
        hosts.steps_per_mips[h] = top / hosts.capacity_mips[h]
        for k in range(top + 1):
            upper = hosts.power_w[h, k + 1] if k < top else hosts.power_w[h, top]
            slope = upper - hosts.power_w[h, k]
            hosts.slope_w[h, k] = slope
            hosts.intercept_w[h, k] = hosts.power_w[h, k] - slope * float(k)
        hosts.power_now_w[h] = _power_at_load(hosts, h, hosts.load_mips[h])


@numba.njit(cache=True)  # type: ignore[misc]
def _segment(hosts: Hosts, h: int, x: float) -> float:
    """Power of host ``h`` at ``x`` table steps; the segment index is clamped into the table."""
    top = hosts.power_w.shape[1] - 1
    k = int(x)
    k = min(max(k, 0), top)
    return hosts.intercept_w[h, k] + hosts.slope_w[h, k] * x


@numba.njit(cache=True)  # type: ignore[misc]
def _power_at_load(hosts: Hosts, h: int, load_mips: float) -> float:
    """Power of host ``h`` at ``load_mips``; overload draws the 100 % figure."""
    top = hosts.power_w.shape[1] - 1
    return _segment(hosts, h, min(load_mips * hosts.steps_per_mips[h], float(top)))


@numba.njit(cache=True)  # type: ignore[misc]
def _shift(hosts: Hosts, h: int, request_mips: float, ram_bytes: float) -> None:
    """Add (or, negative, take) one instance's CPU and memory to host ``h``'s working state."""
    load = hosts.load_mips[h] + request_mips
    hosts.load_mips[h] = load
    hosts.headroom_mips[h] -= request_mips
    hosts.ram_free_bytes[h] -= ram_bytes
    hosts.power_now_w[h] = _power_at_load(hosts, h, load)


@numba.njit(cache=True)  # type: ignore[misc]
def choose_target(
    hosts: Hosts, instances: Instances, i: int, eligible: BoolArray, ivn: int, same_ivn: np.bool_, rule: int
) -> int:
    """Return the host ``rule`` picks for instance ``i`` among eligible fitting hosts, or ``-1``.

    With ``same_ivn`` the hosts of IVN ``ivn`` are searched, otherwise those of every other IVN the
    instance may use. A host fits when the request fits its headroom (with
    :data:`FIT_TOLERANCE_MIPS`, so a host filled exactly to its limit still fits), the memory its
    free memory, each of the instance's PEs gets its share from one host PE, and it has at least as
    many PEs as the instance. Hosts are scanned in index order and only a strictly better score
    replaces the best so far, so ties go to the lowest index.
    """
    # Columns hoisted into locals: reading a NamedTuple field inside the loop costs a reference
    # count increment and decrement per access, which dominated the scan.
    host_ivns, load, capacity, power_now = hosts.ivn, hosts.load_mips, hosts.capacity_mips, hosts.power_now_w
    headroom, ram_free, pe_mips, host_pes = hosts.headroom_mips, hosts.ram_free_bytes, hosts.pe_mips, hosts.pes
    steps, intercept, slope = hosts.steps_per_mips, hosts.intercept_w, hosts.slope_w
    allowed = instances.allowed_ivns[i]
    request = instances.request_mips[i]
    min_headroom = request - FIT_TOLERANCE_MIPS
    ram, per_pe, pes = instances.ram_bytes[i], instances.per_pe_mips[i], instances.pes[i]
    top = intercept.shape[1] - 1
    best = -1
    best_score = np.inf
    for h in range(eligible.shape[0]):
        if not eligible[h]:
            continue
        host_ivn = host_ivns[h]
        if same_ivn:
            if host_ivn != ivn:
                continue
        elif host_ivn == ivn or not allowed[host_ivn]:
            continue
        if not (headroom[h] >= min_headroom and ram_free[h] >= ram and pe_mips[h] >= per_pe and host_pes[h] >= pes):
            continue
        if rule == FIRST_FIT:
            return h
        if rule == LEAST_LOADED:
            score = (load[h] + request) / capacity[h]
        else:
            x = (load[h] + request) * steps[h]
            k = min(max(int(x), 0), top)
            score = (intercept[h, k] + slope[h, k] * x) - power_now[h]
        if best < 0 or score < best_score:
            best = h
            best_score = score
    return best


@numba.njit(cache=True)  # type: ignore[misc]
def evict_by_key(
    hosts: Hosts, instances: Instances, overloaded: BoolArray, key: FloatArray, threshold: float
) -> IntArray:
    """Select instances to leave overloaded hosts and take them off their hosts' working state.

    Per overloaded host, its instances not in migration go in increasing ``key`` order (ties by
    index) while the host is still above ``threshold``. Returns the selected instances ordered by
    decreasing request (stable), the order in which :func:`place_evicted` places them.

    The "removed before" sums are a running total over all candidates minus each host's start, and
    each host's freed load is summed before being subtracted: the numpy formulation this replaces,
    kept so loads stay bit-identical.
    """
    inst_host, in_migration = instances.host, instances.in_migration
    n_inst = inst_host.shape[0]
    cand = np.empty(n_inst, dtype=np.int64)
    n = 0
    for i in range(n_inst):
        h = inst_host[i]
        if h >= 0 and overloaded[h] and not in_migration[i]:
            cand[n] = i
            n += 1
    cand = cand[:n]
    by_key = cand[stable_argsort(key[cand])]
    cand = by_key[stable_argsort(instances.host[by_key].astype(np.float64))]

    picked = np.empty(n, dtype=np.int64)
    n_picked = 0
    cumulative = 0.0
    group_base = 0.0
    previous = -1
    for j in range(n):
        i = cand[j]
        h = instances.host[i]
        request = instances.request_mips[i]
        cumulative += request
        if h != previous:
            group_base = cumulative - request
            previous = h
        removed_before = cumulative - request - group_base
        if hosts.load_mips[h] - removed_before > threshold * hosts.capacity_mips[h]:
            picked[n_picked] = i
            n_picked += 1
    picked = picked[:n_picked]

    n_hosts = hosts.load_mips.shape[0]
    freed_mips = np.zeros(n_hosts)
    freed_ram = np.zeros(n_hosts)
    touched = np.zeros(n_hosts, dtype=np.bool_)
    for inst in picked:
        h = instances.host[inst]
        freed_mips[h] += instances.request_mips[inst]
        freed_ram[h] += instances.ram_bytes[inst]
        touched[h] = True
    for h in range(n_hosts):
        if touched[h]:
            hosts.load_mips[h] -= freed_mips[h]
            hosts.headroom_mips[h] += freed_mips[h]
            hosts.ram_free_bytes[h] += freed_ram[h]
            hosts.power_now_w[h] = _power_at_load(hosts, h, hosts.load_mips[h])
    return picked[stable_argsort(-instances.request_mips[picked])]


@numba.njit(cache=True)  # type: ignore[misc]
def place_evicted(
    hosts: Hosts,
    instances: Instances,
    evicted: IntArray,
    eligible: BoolArray,
    cross_ivn: bool,
    rule: int,
    source_util: FloatArray,
    received: BoolArray,
    moves: Moves,
    n_moves: np.int64,
) -> np.int64:
    """Place instances already taken off their hosts, in the given order; return the move count.

    Each goes to an eligible host of its own IVN, or failing that (with ``cross_ivn``) of another
    IVN it may use; one that fits nowhere is put back on its host. Targets are marked in
    ``received``; moves are appended to ``moves`` from row ``n_moves`` with ``source_util`` of the
    source as the risk.
    """
    for i in evicted:
        source = instances.host[i]
        ivn = hosts.ivn[source]
        target = choose_target(hosts, instances, i, eligible, ivn, _SAME_IVN, rule)
        if target < 0 and cross_ivn:
            target = choose_target(hosts, instances, i, eligible, ivn, _OTHER_IVNS, rule)
        if target < 0:
            _shift(hosts, source, instances.request_mips[i], instances.ram_bytes[i])
            continue
        _shift(hosts, target, instances.request_mips[i], instances.ram_bytes[i])
        received[target] = True
        _record(moves, n_moves, i, source, target, _OVERLOAD, source_util[source])
        n_moves += 1
    return n_moves


@numba.njit(cache=True)  # type: ignore[misc]
def evacuate_underloaded(
    hosts: Hosts,
    instances: Instances,
    candidates: IntArray,
    eligible: BoolArray,
    rule: int,
    source_util: FloatArray,
    received: BoolArray,
    moves: Moves,
    n_moves: np.int64,
) -> np.int64:
    """Empty each candidate host, in the given order, all-or-nothing; return the move count.

    A candidate is skipped if it received an instance earlier; otherwise it leaves ``eligible`` for
    good (an examined host is being switched off, so it is never a target) and its instances, by
    decreasing request (ties by index), go to eligible hosts of its IVN. If one fits nowhere, the
    host's tentative placements are undone in reverse order and it keeps all its instances.
    ``eligible`` is modified.
    """
    n_hosts = hosts.load_mips.shape[0]
    inst_host = instances.host
    n_inst = inst_host.shape[0]
    # Instances grouped by host (counting sort, index order within a host).
    start = np.zeros(n_hosts + 1, dtype=np.int64)
    for i in range(n_inst):
        if inst_host[i] >= 0:
            start[inst_host[i] + 1] += 1
    for h in range(n_hosts):
        start[h + 1] += start[h]
    fill = start[:-1].copy()
    members_of = np.empty(start[n_hosts], dtype=np.int64)
    for i in range(n_inst):
        h = inst_host[i]
        if h >= 0:
            members_of[fill[h]] = i
            fill[h] += 1
    planned = np.empty(n_inst, dtype=np.int64)
    for host in candidates:
        if received[host]:
            continue
        eligible[host] = False
        members = members_of[start[host] : start[host + 1]]
        members = members[stable_argsort(-instances.request_mips[members])]
        ivn = hosts.ivn[host]
        n_planned = 0
        for i in members:
            target = choose_target(hosts, instances, i, eligible, ivn, _SAME_IVN, rule)
            if target < 0:
                break
            _shift(hosts, host, -instances.request_mips[i], -instances.ram_bytes[i])
            _shift(hosts, target, instances.request_mips[i], instances.ram_bytes[i])
            planned[n_planned] = target
            n_planned += 1
        if n_planned < members.shape[0]:
            for j in range(n_planned - 1, -1, -1):
                i = members[j]
                _shift(hosts, planned[j], -instances.request_mips[i], -instances.ram_bytes[i])
                _shift(hosts, host, instances.request_mips[i], instances.ram_bytes[i])
            continue
        for j in range(n_planned):
            received[planned[j]] = True
            _record(moves, n_moves, members[j], host, planned[j], _UNDERLOAD, source_util[host])
            n_moves += 1
    return n_moves


@numba.njit(cache=True)  # type: ignore[misc]
def _record(moves: Moves, row: np.int64, i: int, source: int, target: int, reason: np.int64, util: float) -> None:
    moves.instance[row] = i
    moves.source[row] = source
    moves.target[row] = target
    moves.reason[row] = reason
    moves.source_util[row] = util


@numba.njit(cache=True)  # type: ignore[misc]
def threshold_round(
    hosts: Hosts,
    instances: Instances,
    key: FloatArray,
    threshold: float,
    underload_util: float,
    allow_cross_ivn: bool,
    rule: int,
    moves: Moves,
) -> int:
    """One static-threshold round (see :class:`~policies.threshold_policy.ThresholdPolicy`).

    Args:
        hosts: Host columns; the working state is (re)filled here and left at the planned loads.
        instances: Instance columns.
        key: Instance-selection key per instance (smaller leaves an overloaded host first).
        threshold: Overload threshold, also every target's utilisation limit.
        underload_util: Under-load threshold, or :data:`NO_UNDERLOAD` to skip consolidation.
        allow_cross_ivn: Whether overload evictions may go to other IVNs when their own is full.
        rule: Target rule id (:data:`FIRST_FIT`, :data:`LEAST_LOADED`, :data:`POWER_AWARE_BEST_FIT`).
        moves: Output buffers.

    Returns:
        The number of rows of ``moves`` filled.
    """
    load_hosts(hosts, instances, threshold)
    n_hosts = hosts.load_mips.shape[0]
    # Explicit loops rather than array expressions: same values, less cold-start compile time.
    util_now = np.empty(n_hosts)
    overloaded = np.zeros(n_hosts, dtype=np.bool_)
    relief_targets = np.zeros(n_hosts, dtype=np.bool_)
    any_overloaded = False
    for h in range(n_hosts):
        util_now[h] = hosts.load_mips[h] / hosts.capacity_mips[h]
        overloaded[h] = hosts.available[h] and util_now[h] > threshold
        relief_targets[h] = hosts.available[h] and not overloaded[h]
        any_overloaded = any_overloaded or overloaded[h]
    received = np.zeros(n_hosts, dtype=np.bool_)
    n_moves = np.int64(0)
    if any_overloaded:
        evicted = evict_by_key(hosts, instances, overloaded, key, threshold)
        cross_ivn = allow_cross_ivn and instances.allowed_ivns.shape[1] > 1
        n_moves = place_evicted(
            hosts, instances, evicted, relief_targets, cross_ivn, rule, util_now, received, moves, n_moves
        )
    if underload_util != NO_UNDERLOAD:
        candidates = underload_candidates(hosts, instances, overloaded, received, underload_util)
        active = np.empty(n_hosts, dtype=np.bool_)
        for h in range(n_hosts):
            active[h] = relief_targets[h] and hosts.load_mips[h] / hosts.capacity_mips[h] > 0.0
        n_moves = evacuate_underloaded(hosts, instances, candidates, active, rule, util_now, received, moves, n_moves)
    return int(n_moves)


@numba.njit(cache=True)  # type: ignore[misc]
def underload_candidates(
    hosts: Hosts, instances: Instances, overloaded: BoolArray, received: BoolArray, underload_util: float
) -> IntArray:
    """Hosts to try emptying, least utilised first (ties by index), at their current working load.

    A candidate is available, not overloaded, busy (``0 < util``) yet under ``underload_util``, has
    not received an instance this round, and has no instance mid-migration (it could not be
    emptied now).
    """
    n_hosts = hosts.load_mips.shape[0]
    busy = np.zeros(n_hosts, dtype=np.bool_)
    inst_host, in_migration = instances.host, instances.in_migration
    for i in range(inst_host.shape[0]):
        if inst_host[i] >= 0 and in_migration[i]:
            busy[inst_host[i]] = True
    util = np.empty(n_hosts)
    chosen = np.empty(n_hosts, dtype=np.int64)
    n = 0
    for h in range(n_hosts):
        util[h] = hosts.load_mips[h] / hosts.capacity_mips[h]
        if (
            hosts.available[h]
            and not overloaded[h]
            and 0.0 < util[h] < underload_util
            and not received[h]
            and not busy[h]
        ):
            chosen[n] = h
            n += 1
    chosen = chosen[:n]
    return chosen[stable_argsort(util[chosen])]
