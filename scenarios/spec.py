"""The scenario spec: a TOML file describing topology, workload, mirroring, controller and run.

Specs are validated on load with pydantic (unknown fields are errors, not silently ignored), and any
problem becomes one :class:`ScenarioError` whose single-line message names the file, the field and,
where it can be found, the line. Units are part of field names (``ram_mb`` is 10^6 bytes,
``bandwidth_bps`` bits per second); everything is converted to SI inside the model.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    power_w: list[float] = Field(
        min_length=2, description="power (W) at evenly spaced utilisations 0 %, ..., 100 %"
    )

    @field_validator("power_w")
    @classmethod
    def _monotone_power(cls, v: list[float]) -> list[float]:
        if any(b < a for a, b in zip(v, v[1:], strict=False)) or v[0] < 0:
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
    mirror_store_capacity_gb: float = Field(default=10_000.0, gt=0)
    mirror_store_restore_bps: float = Field(default=8e9, gt=0)


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
    mips: float = Field(gt=0, description="CPU capacity of the instance (MIPS, one PE)")
    ram_mb: float = Field(gt=0)
    state_mb: float | None = Field(default=None, gt=0, description="defaults to ram_mb")


TraceFamily = Literal["planetlab", "bitbrains", "azure", "alibaba"]


class Workload(_Strict):
    """Which trace drives demand, how its series map to instances, and the instances' types."""

    trace: TraceFamily
    subset: str | None = Field(
        default=None,
        description="planetlab: day folder (e.g. 20110303); azure: file stem (e.g. microsoft_avg_100)",
    )
    instances: int | None = Field(default=None, gt=0, description="default: one per trace series")
    mapping: Literal["sorted", "random", "sample"] = Field(
        default="sorted",
        description="sorted: series i -> instance i in file-name order; random: a seeded permutation; "
        "sample: draw series with replacement and shift each by a random whole number of steps",
    )
    instance_types: list[InstanceType] = Field(min_length=1)
    type_assignment: Literal["blocks", "round_robin", "random"] = "blocks"
    ivns: list[str] | None = Field(default=None, description="IVNs instances start in (default: all)")
    step_s: float | None = Field(default=None, gt=0, description="resample the trace to this grid")


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


class ControllerSettings(_Strict):
    """The migration controller: how often it decides, with which policy and parameters."""

    interval_s: float = Field(default=300.0, gt=0)
    policy: str = "threshold"
    params: dict[str, Any] = Field(default_factory=dict)
    history_len: int = Field(default=30, gt=0)


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
    idle_hosts_off: bool = Field(default=True, description="a host with no load draws 0 W")

    @model_validator(mode="after")
    def _cross_refs(self) -> Scenario:
        ivns = {i.name for i in self.topology.ivns}
        for name in self.workload.ivns or []:
            if name not in ivns:
                raise ValueError(f"workload.ivns: unknown IVN {name!r} (known: {sorted(ivns)})")
        if self.rma.target_ivn is not None and self.rma.target_ivn not in ivns:
            raise ValueError(f"rma.target_ivn: unknown IVN {self.rma.target_ivn!r}")
        return self

    @property
    def n_hosts(self) -> int:
        """Total hosts over all IVNs."""
        return sum(g.count for i in self.topology.ivns for g in i.hosts)


def _field_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """Best-effort line number of the innermost named key of ``loc`` in the TOML text."""
    keys = [p for p in loc if isinstance(p, str)]
    for key in reversed(keys):
        pat = re.compile(rf"^\s*(\[+\s*)?([\w.\"-]*\.)?\"?{re.escape(key)}\"?\s*(=|\]|\.)", re.M)
        m = pat.search(text)
        if m:
            return text.count("\n", 0, m.start()) + 1
    return None


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of the raw spec with dotted-path overrides applied (``controller.params.x``)."""
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node: Any = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
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
    """Validate a raw mapping; raise :class:`ScenarioError` naming ``source`` and the bad field."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        path = _field_path(loc) or "(top level)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        line = _line_of(text, loc) if text else None
        where = f"{source}:{line}" if line else source
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        got = err.get("input")
        shown = f"; got {got!r}" if err.get("type") not in ("missing", "extra_forbidden") and _short(got) else ""
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
        except (IndexError, ValueError, TypeError) as exc:
            raise ScenarioError(f"{p}: --set {', '.join(overrides)}: cannot apply ({exc})") from None
    return validate_scenario(raw, source=str(p), text=text)
