"""Turn a scenario and a real trace into the :class:`InstancePopulation` the twin replays.

The twin never reads trace files itself: this module loads the trace named by ``workload``, puts it
on the scenario's step, decides which series each instance replays (in the loader's order, which is
file-name order for PlanetLab as in the CloudSim reference runs; as a seeded permutation; or by
sampling with replacement and random time shifts to build fleets larger than the trace), and gives
every instance a size and a starting IVN.

Everything is vectorised over instances, so a 20,000-instance population is built in milliseconds
once the trace is loaded, and every random draw comes from the injected generator so the same seed
always builds the same population.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scenarios.events import inject_events
from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario, ScenarioError, locate_field
from scenarios.traces import TraceFormatError, TraceNotFoundError, load_trace
from scenarios.traces.trace_set import METRICS, TraceSet

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def build_population(
    scenario: Scenario,
    roots: Sequence[Path],
    *,
    rng: np.random.Generator,
    cache_dir: Path | None = None,
    source: str = "",
) -> InstancePopulation:
    """Build the instances of ``scenario`` from its trace.

    Args:
        scenario: A validated scenario.
        roots: Folders searched for the trace, in order (shared folder, then download cache).
        rng: The only source of randomness (permutations, samples, time shifts, random types).
        cache_dir: Where the trace loader may keep parsed traces between runs.
        source: The scenario file, for error messages; defaults to the file the scenario was
            loaded from, or its name.

    Returns:
        One row per instance, demand on ``scenario.step_s`` covering at least ``duration_s``, with
        the real effect of the scenario's scheduled events in it (:mod:`scenarios.events`).

    Raises:
        ScenarioError: One line naming the scenario file and field: the trace is missing (with what
            to download and from where), too short, lacks a required metric, or an instance cannot
            fit on any host.
    """
    src = source or scenario.source_file or scenario.name
    wl = scenario.workload
    trace = _load(scenario, roots, cache_dir, src)
    trace = _on_step(trace, scenario.step_s)
    missing = [m for m in wl.require_metrics if getattr(trace, m) is None]
    if missing:
        raise ScenarioError(
            f"{locate_field(src, 'workload.require_metrics')}: workload.require_metrics: trace "
            f"{trace.name} has no {', '.join(missing)} (it has {', '.join(trace.metrics())})"
        )

    listed = _listed_series(wl.series_file, trace, src) if wl.mapping == "listed" else None
    n = wl.instances or (len(listed) if listed is not None else trace.n_instances)
    if n > trace.n_instances and wl.mapping != "sample":
        raise ScenarioError(
            f"{locate_field(src, 'workload.instances')}: workload.instances: {n} instances but trace "
            f"{trace.name} has only {trace.n_instances} series; lower it or use workload.mapping = 'sample'"
        )
    n_steps = scenario.n_steps
    offset = round(scenario.start_offset_s / scenario.step_s)
    if offset + n_steps > trace.n_steps and wl.mapping != "sample":
        field = "duration_s" if offset == 0 else "start_offset_s"
        span_s = scenario.start_offset_s + scenario.duration_s
        raise ScenarioError(
            f"{locate_field(src, field)}: {field}: the run needs {offset + n_steps} steps of "
            f"{scenario.step_s:g} s (start_offset_s + duration_s = {span_s:g} s)"
            f" but trace {trace.name} covers {trace.n_steps} ({trace.duration_s:g} s); shorten it or use "
            "workload.mapping = 'sample'"
        )

    if listed is not None:
        if n > len(listed):
            raise ScenarioError(
                f"{locate_field(src, 'workload.instances')}: workload.instances: {n} instances but "
                f"{wl.series_file} lists only {len(listed)} series"
            )
        rows, shifts = listed[:n], np.zeros(n, dtype=np.int64)
    else:
        rows, shifts = _map_series(wl.mapping, trace.n_instances, n, trace.n_steps, rng)
    demand = _demand(trace, rows, shifts, offset, n_steps)
    demand = replace(demand, extra={**demand.extra, "scenario": scenario.name, "mapping": wl.mapping})

    type_names, mips, ram_bytes, state_bytes, pes = _sizes(scenario, demand, rng, src)
    _check_fit(scenario, type_names, mips, ram_bytes, pes, src)
    width = max(5, len(str(n - 1)))
    population = InstancePopulation(
        instance_ids=tuple(f"vm-{i:0{width}d}" for i in range(n)),
        trace_ids=demand.instance_ids,
        type_names=type_names,
        mips=mips,
        ram_bytes=ram_bytes,
        state_bytes=state_bytes,
        ivn_index=_start_ivns(scenario, n),
        demand=demand,
        pes=pes,
    )
    # Scheduled events change demand last, once sizes and start IVNs are known (a no-op without events).
    return inject_events(scenario, population, rng=rng, source=src)


def _load(scenario: Scenario, roots: Sequence[Path], cache_dir: Path | None, src: str) -> TraceSet:
    """Load every subset the workload names and pool their series.

    A missing trace is the common first-run problem, so its message keeps the loader's text (what to
    download, from where) and adds the scenario file and field that asked for it.
    """
    wl = scenario.workload
    grid = wl.step_s or scenario.step_s
    parts: list[TraceSet] = []
    for subset in wl.subsets:
        field = "workload.subset" if subset is not None else "workload.trace"
        try:
            parts.append(load_trace(wl.trace, subset, roots, step_s=grid, cache_dir=cache_dir))
        except TraceNotFoundError as exc:
            raise ScenarioError(f"{locate_field(src, field)}: {field}: {exc}") from None
        except TraceFormatError as exc:
            raise ScenarioError(f"{locate_field(src, field)}: {field}: bad trace file: {exc}") from None
    return parts[0] if len(parts) == 1 else _pool(parts)


def _pool(parts: list[TraceSet]) -> TraceSet:
    """Stack the series of several subsets (e.g. PlanetLab days) into one set to draw from.

    Ids are prefixed with their subset so series of different days stay distinct; the pool is cut to
    the shortest subset and keeps only the metrics every subset has.
    """
    steps = min(p.n_steps for p in parts)
    metrics = [m for m in METRICS if all(getattr(p, m) is not None for p in parts)]
    ids = tuple(f"{p.name.rsplit('/', 1)[-1]}/{i}" for p in parts for i in p.instance_ids)
    changes: dict[str, object] = {
        m: np.concatenate([getattr(p, m)[:, :steps] for p in parts]) if m in metrics else None for m in METRICS
    }
    for attr in ("cpu_capacity_mhz", "mem_capacity_bytes", "start_offsets_s"):
        values = [getattr(p, attr) for p in parts]
        changes[attr] = None if any(v is None for v in values) else np.concatenate(values)
    name = parts[0].name.rsplit("/", 1)[0] + "/" + "+".join(p.name.rsplit("/", 1)[-1] for p in parts)
    return replace(parts[0], name=name, instance_ids=ids, **changes)  # type: ignore[arg-type]


def _on_step(trace: TraceSet, step_s: float) -> TraceSet:
    """Put the trace on the scenario's step when the loader's grid differs (``workload.step_s``)."""
    if math.isclose(trace.step_s, step_s):
        return trace
    from scenarios.traces.resample import regrid_matrix

    changes: dict[str, object] = {m: regrid_matrix(getattr(trace, m), trace.step_s, step_s) for m in trace.metrics()}
    return replace(trace, step_s=step_s, **changes)  # type: ignore[arg-type]


def _listed_series(path: str | None, trace: TraceSet, src: str) -> IntArray:
    """Rows of ``trace`` named, in order, by ``path`` (a ``trace_file`` CSV column or one name per line)."""
    where = locate_field(src, "workload.series_file")
    try:
        lines = Path(str(path)).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{where}: workload.series_file: cannot read {path} ({exc})") from None
    column = 0
    first = 0
    if lines and "trace_file" in lines[0].split(","):
        column = lines[0].split(",").index("trace_file")
        first = 1
    index = {name: i for i, name in enumerate(trace.instance_ids)}
    rows: list[int] = []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        cells = line.split(",")
        name = cells[column].strip() if column < len(cells) else ""
        if name not in index:
            raise ScenarioError(f"{path}:{number}: series {name!r} is not in trace {trace.name}")
        rows.append(index[name])
    if not rows:
        raise ScenarioError(f"{where}: workload.series_file: {path} names no series")
    return np.asarray(rows, dtype=np.int64)


def _map_series(
    mapping: str, n_series: int, n: int, n_steps: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Choose the series (and time shift) each instance replays; all draws come from ``rng``."""
    if mapping == "sorted":
        return np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if mapping == "random":
        return rng.permutation(n_series)[:n].astype(np.int64), np.zeros(n, dtype=np.int64)
    rows = rng.integers(0, n_series, size=n, dtype=np.int64)
    shifts = rng.integers(0, n_steps, size=n, dtype=np.int64)
    return rows, shifts


def _demand(trace: TraceSet, rows: IntArray, shifts: IntArray, offset: int, n_steps: int) -> TraceSet:
    """Cut each instance's demand out of its series.

    Unshifted series are a plain column slice. Shifted (sampled) series wrap around the end of the
    trace, so a sample covers any duration and a one-day trace rolled by k steps is still a day of
    real demand, just starting at a different hour.
    """
    picked = trace.select(rows)
    if not shifts.any():
        changes: dict[str, object] = {m: getattr(picked, m)[:, offset : offset + n_steps] for m in picked.metrics()}
        return replace(picked, **changes)  # type: ignore[arg-type]
    cols = (shifts[:, None] + offset + np.arange(n_steps, dtype=np.int64)[None, :]) % trace.n_steps
    changes = {m: np.take_along_axis(getattr(picked, m), cols, axis=1) for m in picked.metrics()}
    base = picked.start_offsets_s if picked.start_offsets_s is not None else np.zeros(len(rows))
    changes["start_offsets_s"] = base + shifts * trace.step_s
    return replace(picked, **changes)  # type: ignore[arg-type]


def _sizes(
    scenario: Scenario, demand: TraceSet, rng: np.random.Generator, src: str
) -> tuple[tuple[str, ...], FloatArray, FloatArray, FloatArray, IntArray]:
    """Give every instance a type: its name, MIPS, RAM, the state a migration must move, and PEs."""
    wl = scenario.workload
    n = demand.n_instances
    if wl.type_assignment == "from_trace":
        cpu, mem = demand.cpu_capacity_mhz, demand.mem_capacity_bytes
        if cpu is None or mem is None:
            raise ScenarioError(
                f"{locate_field(src, 'workload.type_assignment')}: workload.type_assignment: trace "
                f"{demand.name} states no provisioned CPU/memory; list workload.instance_types instead"
            )
        mips = np.asarray(cpu, dtype=np.float64)
        ram = np.asarray(mem, dtype=np.float64)
        bad = np.flatnonzero(~((mips > 0) & (ram > 0)))
        if bad.size:
            raise ScenarioError(
                f"{locate_field(src, 'workload.type_assignment')}: workload.type_assignment: trace series "
                f"{demand.instance_ids[bad[0]]} has no positive provisioned CPU/memory "
                f"({bad.size} series in all)"
            )
        # vCPUs from the trace where it says; otherwise as few as the fastest host PE allows.
        fastest_pe = max(h.pe_mips for h in scenario.topology.host_types)
        fallback = np.maximum(1, np.ceil(mips / fastest_pe))
        cores = demand.cpu_cores if demand.cpu_cores is not None else np.full(n, np.nan)
        pes = np.where(np.isfinite(cores) & (cores > 0), np.rint(cores), fallback).astype(np.int64)
        names = tuple(f"trace-{c:.0f}mips-{r / MB:.0f}mb" for c, r in zip(mips, ram, strict=True))
        return names, mips, ram, ram.copy(), pes
    k = len(wl.instance_types)
    if wl.type_assignment == "blocks":
        idx = np.arange(n, dtype=np.int64) // math.ceil(n / k)
    elif wl.type_assignment == "round_robin":
        idx = np.arange(n, dtype=np.int64) % k
    else:
        idx = rng.integers(0, k, size=n, dtype=np.int64)
    types = wl.instance_types
    mips_t = np.array([t.mips for t in types], dtype=np.float64)
    ram_t = np.array([t.ram_mb * MB for t in types], dtype=np.float64)
    state_t = np.array([(t.state_mb or t.ram_mb) * MB for t in types], dtype=np.float64)
    pes_t = np.array([t.pes for t in types], dtype=np.int64)
    names_t = [t.name for t in types]
    return tuple(names_t[i] for i in idx), mips_t[idx], ram_t[idx], state_t[idx], pes_t[idx]


def _check_fit(
    scenario: Scenario, type_names: tuple[str, ...], mips: FloatArray, ram: FloatArray, pes: IntArray, src: str
) -> None:
    """Refuse instances bigger than every host type, which no placement could ever run.

    An instance with ``pes`` vCPUs needs ``pes`` host PEs each at least ``mips / pes`` fast.
    """
    hosts = scenario.topology.host_types
    too_big = ~np.logical_or.reduce(
        [(mips <= h.cpu_mips) & (ram <= h.ram_mb * MB) & (pes <= h.pes) & (mips / pes <= h.pe_mips) for h in hosts]
    )
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        field = (
            "topology.host_types" if scenario.workload.type_assignment == "from_trace" else "workload.instance_types"
        )
        raise ScenarioError(
            f"{locate_field(src, field)}: {field}: instance type {type_names[i]} "
            f"({mips[i]:g} MIPS, {ram[i] / MB:g} MB) fits on no host type "
            f"({int(too_big.sum())} instances affected)"
        )


def _start_ivns(scenario: Scenario, n: int) -> IntArray:
    """Spread instances over the starting IVNs in order, in contiguous blocks sized by host count.

    Blocks keep the id -> IVN rule obvious (instances 0..k-1 in the first IVN, and so on) and, with
    IVNs of equal size, give each the same number of instances.
    """
    all_names = [i.name for i in scenario.topology.ivns]
    names = scenario.workload.ivns or all_names
    index = np.array([all_names.index(x) for x in names], dtype=np.int64)
    weights = np.array([scenario.topology.ivns[i].n_hosts for i in index], dtype=np.float64)
    bounds = np.rint(np.cumsum(weights) / weights.sum() * n).astype(np.int64)
    return index[np.searchsorted(bounds, np.arange(n, dtype=np.int64), side="right")]
