"""The live controller's configuration file (``mirrortwin control CONFIG``), validated in one place.

A live configuration names the IVNs (each with its host slots and a Mirror Store), the applications
(how to run, capture and restore them), the instances (which app, where they start, their service
ports on HAProxy), and the controller (the *same* policy names and parameters as a twin scenario's
``[controller]`` section, so a policy chosen in the twin is deployed by copying that section).

Errors name the file and the field (``control.toml: ivns.1.mirror_to: unknown IVN 'ivn-z'``), never a
traceback, like scenario files.
"""

from __future__ import annotations

import math
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from policies.scheduled_events import ScheduledEvent


class LiveConfigError(Exception):
    """A live configuration file is missing or wrong; ``str()`` is one line naming the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostSlot(_Strict):
    """A host of an IVN: on one machine, a budget of cores and memory instances are accounted to."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    cores: float = Field(gt=0)
    memory_mb: float = Field(gt=0)


class IvnConfig(_Strict):
    """One isolated virtual network.

    Attributes:
        name: Its name (also the Mirror Store tenant name of instances mirrored *from* it).
        hosts: Its host slots.
        mirror_to: The IVN whose Mirror Store receives the snapshots of instances running here.
        cost_per_gb_hour: Price of hosting one GB of instance memory here for an hour.
        security_level: For scenarios that restrict where instances may run (informational live).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
    hosts: list[HostSlot] = Field(min_length=1)
    mirror_to: str | None = None
    cost_per_gb_hour: float = Field(default=0.0, ge=0)
    security_level: int = 0


class AppConfig(_Strict):
    """An application kind.

    ``kind = "redis"`` is built in: ``redis-server`` with snapshots by ``BGSAVE`` (the agent's hook
    capture), restore from the RDB, catch-up by replication and a write cut-over under a write pause.
    """

    kind: Literal["redis"] = "redis"
    cores: float = Field(default=0.5, gt=0)
    memory_mb: float = Field(default=256, gt=0)
    redis_server: str = "redis-server"
    start_timeout_s: float = Field(default=30.0, gt=0)


class InstanceConfig(_Strict):
    """One instance at start-up.

    Attributes:
        id: Its logical id (kept across migrations).
        app: Name of its application in ``[apps]``.
        ivn: The IVN it starts in; ``host``: the host slot there.
        read_port / write_port: HAProxy frontend ports on 127.0.0.1 (reads shift step by step; writes
            switch at the cut-over).
        snapshot_interval_s: Its agent's initial snapshot interval (the policy may change it).
        keep_last: Snapshots its Mirror Store keeps.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    app: str
    ivn: str
    host: str | None = None
    read_port: int = Field(ge=1024, le=65535)
    write_port: int = Field(ge=1024, le=65535)
    snapshot_interval_s: float = Field(default=10.0, gt=0)
    keep_last: int = Field(default=3, ge=1)


class WorkflowConfig(_Strict):
    """The migration workflow's knobs (see ``policies.workflow.WorkflowSettings``)."""

    risk_threshold: float = Field(default=0.5, ge=0, le=1)
    traffic_steps: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    dwell_s: float = Field(default=5.0, ge=0)


class ControllerConfig(_Strict):
    """The same ``[controller]`` as a twin scenario's: policy name and parameters, interval, history."""

    policy: str
    params: dict[str, Any] = Field(default_factory=dict)
    interval_s: float = Field(default=5.0, gt=0)
    history_len: int = Field(default=12, ge=1)
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)


class DeclaredEventConfig(_Strict):
    """A scheduled event the operator declares (the live side of a scenario's ``[[events]]``).

    Only the declaration exists live — the fleet experiences the real effect — so there is no
    ``actual_multiplier`` here. Times are wall-clock: ISO 8601 with a time zone, or epoch seconds.

    Attributes:
        name: Its name; kind: ``maintenance``, ``campaign`` or ``seasonal_peak``.
        start / end: The window.
        declared_multiplier: The announced effect on demand (2.0 = twice the usual).
        instances: The logical instances it concerns; empty: all.
    """

    name: str = Field(min_length=1)
    kind: Literal["maintenance", "campaign", "seasonal_peak"]
    start: datetime | float
    end: datetime | float
    declared_multiplier: float = Field(ge=0)
    instances: list[str] = Field(default_factory=list)

    @staticmethod
    def _epoch(value: datetime | float, field: str) -> float:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{field}: give a time zone (e.g. 2026-12-01T09:00:00Z)")
            return value.timestamp()
        return float(value)

    @model_validator(mode="after")
    def _window(self) -> DeclaredEventConfig:
        if not math.isfinite(self.declared_multiplier):
            raise ValueError("declared_multiplier: must be finite")
        if self._epoch(self.end, "end") <= self._epoch(self.start, "start"):
            raise ValueError("end: must be after start")
        return self

    def declaration(self) -> ScheduledEvent:
        """The core's record of this declaration, in epoch seconds (the live fleet view's clock)."""
        return ScheduledEvent(
            name=self.name,
            start_s=self._epoch(self.start, "start"),
            end_s=self._epoch(self.end, "end"),
            multiplier=self.declared_multiplier,
            kind=self.kind,
            instance_ids=tuple(self.instances) or None,
        )


class FaultConfig(_Strict):
    """Deliberate faults for rehearsals (chaos testing), all off by default.

    Attributes:
        freeze_replacements: Logical instances whose replacements are frozen (SIGSTOP) as soon as they
            are ready, so their health checks fail and the workflow must roll back.
    """

    freeze_replacements: list[str] = Field(default_factory=list)


class LiveConfig(_Strict):
    """A whole live configuration."""

    workdir: str = "results/live"
    network: Literal["auto", "netns", "loopback"] = "auto"
    agent_sample_interval_s: float = Field(default=1.0, gt=0)
    health_file: str = "health.json"
    ivns: list[IvnConfig] = Field(min_length=1)
    apps: dict[str, AppConfig]
    instances: list[InstanceConfig] = Field(min_length=1)
    controller: ControllerConfig
    events: list[DeclaredEventConfig] = Field(default_factory=list)
    faults: FaultConfig = Field(default_factory=FaultConfig)

    @field_validator("agent_sample_interval_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value

    @model_validator(mode="after")
    def _references(self) -> LiveConfig:
        names = [i.name for i in self.ivns]
        if len(set(names)) != len(names):
            raise ValueError(f"ivns: names must be unique, got {names}")
        for k, ivn in enumerate(self.ivns):
            if ivn.mirror_to is not None and ivn.mirror_to not in names:
                raise ValueError(f"ivns.{k}.mirror_to: unknown IVN {ivn.mirror_to!r} (known: {names})")
            if ivn.mirror_to == ivn.name:
                raise ValueError(f"ivns.{k}.mirror_to: an IVN cannot mirror into itself")
        ids = [i.id for i in self.instances]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instances: ids must be unique, got {ids}")
        ports = [p for i in self.instances for p in (i.read_port, i.write_port)]
        if len(set(ports)) != len(ports):
            raise ValueError("instances: read_port and write_port must all differ")
        for k, inst in enumerate(self.instances):
            if inst.app not in self.apps:
                raise ValueError(f"instances.{k}.app: unknown app {inst.app!r} (known: {sorted(self.apps)})")
            ivn = next((i for i in self.ivns if i.name == inst.ivn), None)
            if ivn is None:
                raise ValueError(f"instances.{k}.ivn: unknown IVN {inst.ivn!r} (known: {names})")
            if inst.host is not None and inst.host not in {h.name for h in ivn.hosts}:
                raise ValueError(f"instances.{k}.host: IVN {inst.ivn!r} has no host {inst.host!r}")
            if ivn.mirror_to is None:
                raise ValueError(f"instances.{k}.ivn: IVN {inst.ivn!r} has no mirror_to, so nothing mirrors it")
        for k, event in enumerate(self.events):
            for j, name in enumerate(event.instances):
                if name not in ids:
                    raise ValueError(f"events.{k}.instances.{j}: unknown instance {name!r}")
        for k, name in enumerate(self.faults.freeze_replacements):
            if name not in ids:
                raise ValueError(f"faults.freeze_replacements.{k}: unknown instance {name!r}")
        return self

    def ivn(self, name: str) -> IvnConfig:
        """The IVN called ``name``."""
        return next(i for i in self.ivns if i.name == name)

    @staticmethod
    def host_id(ivn: str, host: str) -> str:
        """The fleet-wide id of an IVN's host slot (as the twin names hosts: ``ivn/host``)."""
        return f"{ivn}/{host}"


def load_live_config(path: Path) -> LiveConfig:
    """Read and validate a live configuration file.

    Raises:
        LiveConfigError: One line naming the file and the field (or the TOML line) that is wrong.
    """
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LiveConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise LiveConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return LiveConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise LiveConfigError(f"{path}: {where}: {message}{more}") from None
