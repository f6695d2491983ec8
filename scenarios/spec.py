"""The scenario spec: a TOML file describing topology, workload, mirroring, controller and run.

Specs are validated on load with pydantic (unknown fields are errors, not silently ignored), and any
problem becomes one :class:`ScenarioError` whose single-line message names the file, the field and,
where it can be found, the line. Units are part of field names (``ram_mb`` is 10^6 bytes,
``bandwidth_bps`` bits per second); everything is converted to SI inside the model.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

MB = 1_000_000  # bytes; CloudSim's "MB" in its migration-time formula is 10^6 bytes.


class ScenarioError(Exception):
    """A scenario cannot be loaded or run as written. ``str()`` is the one-line user message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostType(_Strict):
    """A server model: CPU, memory, NIC and its SPECpower curve."""

    name: str
    pes: int = Field(gt=0, description="processing elements (cores)")
    pe_mips: float = Field(gt=0, description="capacity of one processing element (MIPS)")
    ram_mb: float = Field(gt=0)
    nic_bandwidth_bps: float = Field(gt=0)
    power_w: list[float] = Field(min_length=2, description="power (W) at evenly spaced utilisations 0 %, ..., 100 %")

    @field_validator("power_w")
    @classmethod
    def _monotone_power(cls, v: list[float]) -> list[float]:
        if any(b < a for a, b in itertools.pairwise(v)) or v[0] < 0:
            raise ValueError("power_w must be non-negative and non-decreasing with utilisation")
        return v

    @property
    def cpu_mips(self) -> float:
        """Total CPU capacity (MIPS)."""
        return self.pes * self.pe_mips


class HostGroup(_Strict):
    """``count`` hosts of one type inside an IVN."""

    type: str
    count: int = Field(gt=0)


class IvnSpec(_Strict):
    """An isolated virtual network: its hosts, Mirror Store and the attributes a policy weighs."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    hosts: list[HostGroup] = Field(min_length=1)
    location: str = ""
    cost_per_gb_hour: float = Field(default=0.0, ge=0)
    security_level: int = Field(default=0, ge=0)
    cpu_overcommit_ratio: float = Field(
        default=1.0,
        ge=1.0,
        description="initial placement may book provisioned MIPS up to this multiple of a host's capacity",
    )
    mirror_store_capacity_gb: float = Field(default=10_000.0, gt=0)
    mirror_store_restore_bps: float = Field(default=8e9, gt=0)
    host_order: Literal["grouped", "interleaved"] = Field(
        default="grouped",
        description="how host ids are numbered: grouped = all hosts of hosts[0], then hosts[1], ...; "
        "interleaved = one of each group in turn (CloudSim: host i has type i % 2)",
    )

    @property
    def n_hosts(self) -> int:
        """Number of hosts in this IVN."""
        return sum(g.count for g in self.hosts)

    def host_type_sequence(self) -> list[str]:
        """Host type name of every host of this IVN, in host-id order.

        The order matters for reproducing CloudSim: its first-fit placement walks hosts by id, so
        interleaved G4/G5 numbering gives different placements from 400 G4 followed by 400 G5.
        Interleaving takes one host from each group in turn and skips groups that are used up.
        """
        if self.host_order == "grouped":
            return [g.type for g in self.hosts for _ in range(g.count)]
        left = [g.count for g in self.hosts]
        out: list[str] = []
        while any(left):
            for k, g in enumerate(self.hosts):
                if left[k]:
                    out.append(g.type)
                    left[k] -= 1
        return out


class LinkSpec(_Strict):
    """A network link between two IVNs, shared fairly by every transfer crossing it."""

    between: tuple[str, str]
    bandwidth_bps: float = Field(gt=0)
    latency_s: float = Field(default=0.0, ge=0)


class Topology(_Strict):
    """Host types, IVNs and the links between them."""

    host_types: list[HostType] = Field(min_length=1)
    ivns: list[IvnSpec] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Topology:
        types = {t.name for t in self.host_types}
        names = [i.name for i in self.ivns]
        if len(set(names)) != len(names):
            raise ValueError(f"IVN names must be unique, got {names}")
        for i, ivn in enumerate(self.ivns):
            for j, g in enumerate(ivn.hosts):
                if g.type not in types:
                    raise ValueError(
                        f"ivns[{i}].hosts[{j}].type: unknown host type {g.type!r} (known: {sorted(types)})"
                    )
        for k, link in enumerate(self.links):
            for end in link.between:
                if end not in names:
                    raise ValueError(f"links[{k}].between: unknown IVN {end!r} (known: {names})")
        return self

    def host_type(self, name: str) -> HostType:
        """Look a host type up by name."""
        return next(t for t in self.host_types if t.name == name)


class InstanceType(_Strict):
    """A VM/instance size. ``state_mb`` is the state a migration or snapshot must move."""

    name: str
    mips: float = Field(gt=0, description="CPU capacity of the instance (MIPS, over all its PEs)")
    pes: int = Field(default=1, gt=0, description="vCPUs; each needs a host PE of at least mips/pes")
    ram_mb: float = Field(gt=0)
    state_mb: float | None = Field(default=None, gt=0, description="defaults to ram_mb")


TraceFamily = Literal["planetlab", "bitbrains", "azure", "alibaba"]
MetricName = Literal["cpu_util", "mem_util", "net_rx_bps", "net_tx_bps", "disk_read_bps", "disk_write_bps"]


class Workload(_Strict):
    """Which trace drives demand, how its series map to instances, and the instances' types."""

    trace: TraceFamily
    subset: str | list[str] | None = Field(
        default=None,
        description="planetlab: day folder (e.g. 20110303); azure: file stem (e.g. microsoft_avg_100); "
        "a list pools the series of several subsets (useful with mapping = 'sample')",
    )
    instances: int | None = Field(default=None, gt=0, description="default: one per trace series")
    mapping: Literal["sorted", "random", "sample", "listed"] = Field(
        default="sorted",
        description="sorted: series i -> instance i in file-name order; random: a seeded permutation; "
        "sample: draw series with replacement and shift each by a random whole number of steps; "
        "listed: instance i replays the series named on row i of series_file",
    )
    series_file: str | None = Field(
        default=None,
        description="mapping = 'listed': a CSV with a trace_file column (or one series name per line), e.g. the "
        "order CloudSim's File.listFiles() gave on the machine that made a reference run",
    )
    instance_types: list[InstanceType] = Field(
        default_factory=list, description="required unless type_assignment = 'from_trace'"
    )
    type_assignment: Literal["blocks", "round_robin", "random", "from_trace"] = Field(
        default="blocks",
        description="blocks: type = i // ceil(N / types) (CloudSim); round_robin: i % types; "
        "random: seeded draw; from_trace: each instance's MIPS and RAM are the trace's provisioned "
        "capacities (MHz taken as MIPS)",
    )
    ivns: list[str] | None = Field(default=None, description="IVNs instances start in (default: all)")
    may_move_to: list[str] | None = Field(
        default=None, description="IVNs instances may run in and be moved or failed over to (default: any)"
    )
    min_security_level: int = Field(
        default=0, ge=0, description="instances may only run in IVNs of at least this security_level"
    )
    step_s: float | None = Field(
        default=None, gt=0, description="grid the loader puts an irregular trace on (default: step_s)"
    )
    require_metrics: list[MetricName] = Field(
        default_factory=list, description="metrics the trace must have, or the scenario is refused"
    )

    @field_validator("subset", mode="before")
    @classmethod
    def _subset_as_text(cls, v: object) -> object:
        # ``--set workload.subset=20110306`` parses as a TOML integer; a day folder is a name.
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, list):
            return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return v

    @model_validator(mode="after")
    def _types_match_assignment(self) -> Workload:
        if self.type_assignment == "from_trace":
            if self.instance_types:
                raise ValueError(
                    "instance_types: must be empty when type_assignment = 'from_trace' "
                    "(instance sizes come from the trace)"
                )
        elif not self.instance_types:
            raise ValueError(
                f"instance_types: at least one instance type is needed for type_assignment = {self.type_assignment!r}"
            )
        names = [t.name for t in self.instance_types]
        if len(set(names)) != len(names):
            raise ValueError(f"instance_types: names must be unique, got {names}")
        if (self.mapping == "listed") != (self.series_file is not None):
            raise ValueError("series_file: give it exactly when mapping = 'listed'")
        if isinstance(self.subset, list) and not self.subset:
            raise ValueError("subset: an empty list names no trace; leave it out for the default")
        return self

    @property
    def subsets(self) -> list[str | None]:
        """The subsets to load, as a list (``[None]`` for the family's default)."""
        if isinstance(self.subset, list):
            return list(self.subset)
        return [self.subset]


class RmaSettings(_Strict):
    """Resource Mirroring Agent settings applied to every instance (the controller may change them)."""

    enabled: bool = True
    sampling_interval_s: float = Field(default=300.0, gt=0)
    snapshot_interval_s: float = Field(default=300.0, gt=0)
    retention_count: int = Field(default=12, gt=0)
    retention_max_age_s: float = Field(default=86_400.0, gt=0)
    max_chain_length: int = Field(default=8, gt=0, description="deltas before a chain is compacted")
    target_ivn: str | None = Field(default=None, description="where snapshots go (default: another IVN)")
    compression_ratio: float = Field(default=2.5, ge=1.0)
    dedup_ratio: float = Field(default=1.3, ge=1.0)
    writable_working_set_fraction: float = Field(default=0.25, gt=0, le=1)
    dirty_rate_mb_s_at_full_load: float = Field(default=40.0, ge=0)
    cpu_overhead_mips: float = Field(default=10.0, ge=0)


class FailureAt(_Strict):
    """One scripted host failure."""

    host: str = Field(description="host id, e.g. 'ivn-a/h00003' (IVN name / h + 5-digit index)")
    at_s: float = Field(ge=0, description="failure time (s from the start of the run)")


class FailureSettings(_Strict):
    """Host failures, and the health metrics that rise before them and that telemetry reports."""

    enabled: bool = False
    model: Literal["exponential", "weibull", "list"] = Field(
        default="exponential",
        description="exponential / weibull: independent per-host lifetimes with mean mtbf_s; list: the times below",
    )
    mtbf_s: float = Field(default=30 * 86_400.0, gt=0, description="mean time between failures of one host")
    weibull_shape: float = Field(default=1.5, gt=0, description="k > 1: wear-out, k < 1: infant mortality")
    times: list[FailureAt] = Field(default_factory=list, description="model = 'list': scripted failures")
    detection_s: float = Field(default=30.0, ge=0, description="heartbeat timeout before failover starts")
    repair_s: float | None = Field(default=None, gt=0, description="a failed host returns after this; None: never")
    health_lead_time_s: float = Field(
        default=6 * 3600.0, ge=0, description="health metrics start rising this long before a failure"
    )
    health_noise: float = Field(default=0.25, ge=0, description="relative noise on the health metrics")
    health_model: Literal["parametric", "smart"] = Field(
        default="parametric",
        description=(
            "parametric: memory and disk I/O error counts rising before a failure; smart: each host reports the "
            "SMART readings of a real Backblaze drive (healthy, moving towards a real failed drive's readings "
            "over the lead time), which the failure classifier scores"
        ),
    )
    rebuild_boot_s: float = Field(
        default=180.0, ge=0, description="without a mirror: time to provision and boot an empty replacement"
    )
    failover_placement: Literal["pack", "spread"] = Field(
        default="pack",
        description=(
            "where a failed host's instances restart: pack = the fullest running host that stays at or under "
            "failover_max_util (else the least loaded); spread = the least loaded host"
        ),
    )
    failover_max_util: float = Field(
        default=0.8, gt=0, le=1, description="pack: CPU utilisation a host may reach by receiving a failover"
    )


class RequestSettings(_Strict):
    """Request load per instance (a fluid rate following its CPU trace) and its latency."""

    enabled: bool = False
    peak_rps: float = Field(default=100.0, gt=0, description="requests/s an instance receives at 100 % CPU")
    capacity_rps: float = Field(
        default=125.0, gt=0, description="requests/s an instance serves with its full MIPS (M/M/1 service rate)"
    )
    timeout_s: float = Field(default=2.0, gt=0, description="a request waiting longer counts as failed")


class ControllerSettings(_Strict):
    """The migration controller: how often it decides, with which policy and parameters."""

    interval_s: float = Field(default=300.0, gt=0)
    policy: str = "threshold"
    params: dict[str, Any] = Field(default_factory=dict)
    history_len: int = Field(default=30, gt=0)
    risk_threshold: float = Field(
        default=0.5, ge=0, le=1, description="the workflow's 'Low Risk' cut-off for cross-IVN moves"
    )
    traffic_steps: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0], min_length=1, description="LB weight steps"
    )
    dwell_s: float = Field(default=30.0, ge=0, description="time at each traffic step before a health check")
    health_failure_probability: float = Field(
        default=0.0, ge=0, le=1, description="chance that a replacement fails a health check (twin only)"
    )
    migration_strategy: Literal["auto", "precopy", "cold", "mirror_restore"] = Field(
        default="auto",
        description="how instances move: auto picks the cheapest per migration (bytes, time, downtime)",
    )
    max_downtime_s: float = Field(default=0.3, gt=0, description="pre-copy stop-and-copy target downtime")
    max_precopy_rounds: int = Field(default=30, gt=0, description="forced stop-and-copy after this many rounds")
    health_detection_delay_s: float = Field(
        default=5.0, ge=0, description="time for a replacement's failing health check to be noticed"
    )

    @field_validator("traffic_steps")
    @classmethod
    def _steps_rise_to_one(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(v)) or v[0] <= 0 or v[-1] != 1.0:
            raise ValueError("traffic_steps must be strictly increasing fractions in (0, 1] ending at 1.0")
        return v


EventKind = Literal["maintenance", "campaign", "seasonal_peak"]


class EventSpec(_Strict):
    """A scheduled event: what the operator declares ahead of time, and what it really does to demand.

    The twin multiplies the demand of the instances the event touches by the *actual* effect
    (``actual_multiplier``, ramped in and out over ``ramp_s``); forecasters and policies see only the
    declaration (``declared_multiplier`` over ``[start_s, end_s)``), as a live operator would. The
    gap between the two is the point: a campaign announced as x2 that brings x2.6, a seasonal peak
    that builds up over an hour instead of at the stroke of the hour.

    ``maintenance`` is modelled as a demand change of the touched instances, not as hosts going away:
    the service is drained (declared 0: its users are sent elsewhere for the window) and what really
    remains (``actual_multiplier``, e.g. 0.1 for health checks and stragglers) is what the twin runs.
    Hosts stay up, so the controller may consolidate the emptied capacity and must re-spread it when
    the window ends.

    Which instances: all of them (default), those starting in ``ivn``, a seeded random ``fraction``
    (drawn from the population's generator), or the listed ``instance_ids``; at most one of the three.
    The selection is part of the declaration (an operator knows which service a campaign promotes).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: EventKind
    start_s: float = Field(ge=0, allow_inf_nan=False, description="start, s from the start of the run")
    end_s: float = Field(
        gt=0, allow_inf_nan=False, description="end (exclusive), s from the start of the run; may outlast the run"
    )
    declared_multiplier: float = Field(ge=0, allow_inf_nan=False, description="effect on demand the operator announces")
    actual_multiplier: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="effect the twin applies (default: as declared)"
    )
    ramp_s: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="the real effect builds up (and fades) linearly over this"
    )
    network: bool | None = Field(
        default=None, description="also scale network demand (default: campaigns and seasonal peaks do)"
    )
    ivn: str | None = Field(default=None, description="only instances starting in this IVN")
    fraction: float | None = Field(default=None, gt=0, le=1, description="a seeded random share of the instances")
    instance_ids: list[str] | None = Field(default=None, min_length=1, description="only these instances")

    @model_validator(mode="after")
    def _consistent(self) -> EventSpec:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s: must be after start_s ({self.end_s:g} <= {self.start_s:g})")
        if 2 * self.ramp_s > self.end_s - self.start_s:
            raise ValueError(
                f"ramp_s: {self.ramp_s:g} s in and {self.ramp_s:g} s out do not fit a "
                f"{self.end_s - self.start_s:g} s window"
            )
        chosen = [k for k in ("ivn", "fraction", "instance_ids") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"{chosen[1]}: give at most one of ivn, fraction, instance_ids (got {', '.join(chosen)})")
        return self

    @property
    def real_multiplier(self) -> float:
        """The effect the twin applies at the event's full strength."""
        return self.declared_multiplier if self.actual_multiplier is None else self.actual_multiplier

    @property
    def scales_network(self) -> bool:
        """Whether network demand changes too (by default: campaigns and seasonal peaks)."""
        return self.kind != "maintenance" if self.network is None else self.network


class Scenario(_Strict):
    """A complete, validated description of one run."""

    name: str
    description: str = ""
    seed: int = 0
    duration_s: float = Field(gt=0)
    step_s: float = Field(default=300.0, gt=0, description="demand/accounting step of the twin")
    start_offset_s: float = Field(default=0.0, ge=0, description="skip this much of the trace")
    topology: Topology
    workload: Workload
    rma: RmaSettings = RmaSettings()
    controller: ControllerSettings = ControllerSettings()
    failures: FailureSettings = FailureSettings()
    requests: RequestSettings = RequestSettings()
    events: list[EventSpec] = Field(
        default_factory=list, description="scheduled events: declared to the policy, injected into demand"
    )
    idle_hosts_off: bool = Field(default=True, description="a host with no load draws 0 W")
    power_aware: bool = Field(
        default=True,
        description="false: every host draws its 100 % power at all times (CloudSim's non-power-aware NPA baseline)",
    )
    initial_placement: Literal["power_aware_best_fit", "first_fit"] = Field(
        default="power_aware_best_fit",
        description="t = 0 placement: power-aware best fit (CloudSim's migrating policies) or first fit in host "
        "order (CloudSim's DVFS and NPA runs)",
    )
    accounting: Literal["twin", "cloudsim"] = Field(
        default="twin",
        description="twin: the twin's own physics; cloudsim: CloudSim 3.0.3's bookkeeping, for validation "
        "(sim/cloudsim_accounting.py, docs/validation.md)",
    )

    _source: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _cross_refs(self) -> Scenario:
        ivns = {i.name for i in self.topology.ivns}
        for name in self.workload.ivns or []:
            if name not in ivns:
                raise ValueError(f"workload.ivns: unknown IVN {name!r} (known: {sorted(ivns)})")
        for k, event in enumerate(self.events):
            if event.ivn is not None and event.ivn not in ivns:
                raise ValueError(f"events[{k}].ivn: unknown IVN {event.ivn!r} (known: {sorted(ivns)})")
        if self.rma.target_ivn is not None and self.rma.target_ivn not in ivns:
            raise ValueError(f"rma.target_ivn: unknown IVN {self.rma.target_ivn!r}")
        for name in self.workload.may_move_to or []:
            if name not in ivns:
                raise ValueError(f"workload.may_move_to: unknown IVN {name!r} (known: {sorted(ivns)})")
        allowed = [i.name for i, ok in zip(self.topology.ivns, self.allowed_ivns(), strict=True) if ok]
        if not allowed:
            raise ValueError(
                "workload.may_move_to / workload.min_security_level: no IVN is left for the instances to run in"
            )
        for name in self.workload.ivns or [i.name for i in self.topology.ivns if i.name in allowed]:
            if name not in allowed:
                raise ValueError(
                    f"workload.ivns: instances start in {name!r}, which workload.may_move_to / "
                    f"workload.min_security_level exclude (allowed: {allowed})"
                )
        return self

    def allowed_ivns(self) -> list[bool]:
        """Per IVN (topology order), whether the instances may run there (move, fail over, restore)."""
        names = set(self.workload.may_move_to) if self.workload.may_move_to is not None else None
        return [
            (names is None or i.name in names) and i.security_level >= self.workload.min_security_level
            for i in self.topology.ivns
        ]

    @property
    def n_hosts(self) -> int:
        """Total hosts over all IVNs."""
        return sum(i.n_hosts for i in self.topology.ivns)

    @property
    def n_steps(self) -> int:
        """Grid points needed to cover ``duration_s`` at ``step_s``."""
        return math.ceil(self.duration_s / self.step_s - 1e-9)

    @property
    def source_file(self) -> str:
        """The file this scenario was loaded from ("" when built in code); used in error messages."""
        return self._source

    def with_source(self, source: str) -> Scenario:
        """Return a copy that remembers ``source`` as the file it came from."""
        out = self.model_copy()
        out._source = source
        return out


def _field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _parse_path(path: str) -> list[int | str]:
    """Invert :func:`_field_path`: ``ivns[0].hosts[1].type`` -> ``["ivns", 0, "hosts", 1, "type"]``."""
    out: list[int | str] = []
    for name, index in re.findall(r"([A-Za-z_][\w-]*)|\[(\d+)\]", path):
        out.append(int(index) if index else name)
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[\w-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[\w-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", dotted)]


def _key_lines(text: str) -> list[tuple[tuple[int | str, ...], int]]:
    """Map every table header and key assignment of a TOML text to its full path and line.

    Just enough of TOML to say where ``topology.ivns[1].hosts`` is written: array-of-tables headers
    are numbered per parent (``[[topology.ivns]]`` twice gives ``ivns[0]`` and ``ivns[1]``), and keys
    take the path of the table they sit in. Values spanning lines are located by their key's line.
    """
    out: list[tuple[tuple[int | str, ...], int]] = []
    counts: dict[tuple[int | str, ...], int] = {}
    current_index: dict[tuple[str, ...], int] = {}
    table: tuple[int | str, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            names = _split_key(header.group(2))
            path: list[int | str] = []
            for depth, name in enumerate(names):
                path.append(name)
                plain = tuple(names[: depth + 1])
                if depth < len(names) - 1 and plain in current_index:
                    path.append(current_index[plain])
            if header.group(1) == "[[":
                parent = tuple(path)
                index = counts.get(parent, 0)
                counts[parent] = index + 1
                current_index[tuple(names)] = index
                path.append(index)
            table = tuple(path)
            out.append((table, lineno))
            continue
        key = _KEY.match(line)
        if key:
            out.append(((*table, *_split_key(key.group(1))), lineno))
    return out


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Best-effort line of field ``loc``: where it is written, where its tables start, or its parent.

    A field written as ``[[a.b]]`` tables has no line of its own, so the first of them stands for it;
    a missing field has none either, so the nearest enclosing table that is written stands for it.
    """
    target = tuple(loc)
    entries = _key_lines(text)
    within = [line for path, line in entries if path[: len(target)] == target]
    if within:
        return min(within)
    best: tuple[int, int] | None = None
    for path, lineno in entries:
        n = len(path)
        if n < len(target) and target[:n] == path and (best is None or n > best[0]):
            best = (n, lineno)
    return best[1] if best else None


def locate_field(source: str, field: str) -> str:
    """Return ``source:line`` for a dotted field of a scenario file, or just ``source``.

    Errors found after validation (a trace day that does not exist, a duration the trace cannot
    cover) still have to point at the line to edit; this re-reads the file, best effort.
    """
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return source
    line = _line_of(text, _parse_path(field))
    return f"{source}:{line}" if line else source


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of the raw spec with dotted-path overrides applied (``controller.params.x``)."""
    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node: Any = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise TypeError(f"{part!r} is a value, not a table")
        if isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as a TOML value if it can be."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected KEY=VALUE, e.g. controller.params.threshold=0.7")
    key, value = text.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def validate_scenario(raw: Mapping[str, Any], *, source: str, text: str = "") -> Scenario:
    """Validate a raw mapping; raise :class:`ScenarioError` naming ``source`` and the bad field.

    Only the first problem is reported (with a count of the others): one precise line is more useful
    to someone editing a file than a wall of pydantic output, and it never includes a traceback.
    Cross-reference validators raise ``ValueError("sub.path: message")``; the sub-path is appended
    to the location pydantic reports so the message names the exact field.
    """
    try:
        return Scenario.model_validate(raw).with_source(source)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: list[int | str] = list(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        kind = err.get("type")
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
            head, sep, rest = msg.partition(": ")
            if sep and re.fullmatch(r"[A-Za-z_][\w-]*(\[\d+\]|\.[A-Za-z_][\w-]*)*", head):
                loc += _parse_path(head)
                msg = rest
        path = _field_path(loc) or "(top level)"
        got = err.get("input")
        line = _line_of(text, loc) if text else None
        where = f"{source}:{line}" if line else source
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        shown = ""
        if kind not in ("missing", "extra_forbidden", "value_error") and _short(got):
            shown = f"; got {got!r}"
        raise ScenarioError(f"{where}: {path}: {msg}{shown}{more}") from None


def _short(value: object) -> bool:
    return not isinstance(value, dict | list) and len(repr(value)) < 60


def load_scenario_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario file ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    if overrides:
        try:
            raw = apply_overrides(raw, overrides)
        except (IndexError, ValueError, TypeError, AttributeError) as exc:
            raise ScenarioError(f"{p}: --set {', '.join(overrides)}: cannot apply ({exc})") from None
    return validate_scenario(raw, source=str(p), text=text)
