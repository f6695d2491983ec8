"""The live :class:`policies.ports.Telemetry`: the fleet view built from the agents' samples.

The twin builds a :class:`~policies.fleet.FleetSnapshot` from its state arrays; the live controller
builds the same record from what the Resource Mirroring Agents report, so a policy sees the same
columns in both worlds:

* hosts and IVNs come from the live configuration (a host is a machine, or a resource slot of one);
  CPU capacity is expressed in the twin's unit, MIPS, as ``cores x mips_per_core``, so thresholds and
  placement kernels carry over unchanged;
* each instance's CPU history is its agent's ``cpu_util`` samples (fraction of its allotted cores),
  newest last, NaN-padded while short — the policies' "history too short" fallbacks depend on that;
* memory is the agent's latest resident size (the state a migration must move), or the provisioned
  size before the first sample;
* placement (which host runs which logical instance now) comes from the instance provider, which
  knows about replacements;
* host health comes from a :class:`~realworld.health.HostHealthSource`.

An agent that cannot be reached leaves its instance's history as it was (NaN for the missing
samples) and is logged, because one dead sidecar must not stop the controller.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from policies.fleet import FleetSnapshot
from policies.ports import Clock
from policies.scheduled_events import ScheduledEvent
from realworld.agent.control_client import AgentControlClient, AgentControlError
from realworld.agent.samples import ResourceSample
from realworld.health import HostHealthSource

log = logging.getLogger(__name__)

#: Power table of a host nobody described: a typical 2-socket server (SPECpower-like, W at 0..100 %).
DEFAULT_POWER_W: tuple[float, ...] = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)


@dataclass(frozen=True, slots=True)
class LiveHost:
    """A host of the live fleet as the controller sees it.

    Attributes:
        host_id: Unique name (``ivn-a/h0``).
        ivn: The IVN it belongs to.
        cores: CPU cores it offers to instances.
        ram_bytes: Memory it offers.
        power_w: Power at 0, 10, ..., 100 % utilisation (11 values).
    """

    host_id: str
    ivn: str
    cores: float
    ram_bytes: float
    power_w: tuple[float, ...] = DEFAULT_POWER_W


@dataclass(frozen=True, slots=True)
class LiveInstance:
    """A logical instance: it keeps its id across migrations, while its process (and agent) change.

    Attributes:
        instance_id: Logical id.
        cores: Cores it is allotted (``cpu_util`` is relative to these).
        ram_bytes: Provisioned memory, used until the agent reports resident memory.
    """

    instance_id: str
    cores: float
    ram_bytes: float


class LiveTelemetry:
    """Build fleet views from agents, placement and health readings.

    Args:
        hosts: The fleet's hosts (order fixes the host index in every view).
        ivns: IVN names (order fixes the IVN index).
        instances: Logical instances (order fixes the instance index).
        agent_of: The control client of the agent mirroring a logical instance *now* (a migration
            brings a new process with its own agent); ``None`` for an instance without one.
        placement: Returns the host id currently running each logical instance (absent: not running).
        clock: Time of the views.
        health: Host health readings, if any are gathered.
        mips_per_core: Capacity of one core in the twin's MIPS unit.
        in_migration: Returns the logical instances that are being moved now.
        ivn_cost_per_gb_hour: Hosting price per IVN, in ``ivns`` order.
        max_history: Samples kept per instance.
        declared_events: The operator's declared schedule (never the real effect), handed to policies
            whose forecasters take exogenous inputs.
        sample_interval_s: Time between two agent samples (the history's step).
    """

    def __init__(
        self,
        *,
        hosts: Sequence[LiveHost],
        ivns: Sequence[str],
        instances: Sequence[LiveInstance],
        agent_of: Callable[[str], AgentControlClient | None],
        placement: Callable[[], Mapping[str, str]],
        clock: Clock,
        health: HostHealthSource | None = None,
        mips_per_core: float = 1000.0,
        in_migration: Callable[[], set[str] | frozenset[str]] | None = None,
        ivn_cost_per_gb_hour: Sequence[float] | None = None,
        max_history: int = 1_000,
        declared_events: Sequence[ScheduledEvent] = (),
        sample_interval_s: float | None = None,
    ) -> None:
        self.hosts = tuple(hosts)
        self.ivns = tuple(ivns)
        self.instances = tuple(instances)
        unknown = sorted({h.ivn for h in self.hosts} - set(self.ivns))
        if unknown:
            raise ValueError(f"hosts: IVN(s) {', '.join(unknown)} not among ivns {list(self.ivns)}")
        if not (math.isfinite(mips_per_core) and mips_per_core > 0):
            raise ValueError(f"mips_per_core: must be > 0, got {mips_per_core!r}")
        self._agent_of = agent_of
        self._placement = placement
        self._clock = clock
        self._health = health
        self._in_migration = in_migration
        self.mips_per_core = float(mips_per_core)
        self._host_index = {h.host_id: i for i, h in enumerate(self.hosts)}
        self._history: dict[str, deque[float]] = {i.instance_id: deque(maxlen=max_history) for i in self.instances}
        self._memory: dict[str, float] = {i.instance_id: float(i.ram_bytes) for i in self.instances}
        self._seen_until: dict[str, float] = {i.instance_id: 0.0 for i in self.instances}
        self._cost = None if ivn_cost_per_gb_hour is None else np.asarray(ivn_cost_per_gb_hour, dtype=np.float64)
        self._latest_health: dict[str, dict[str, float]] = {}
        self.declared_events = tuple(declared_events)
        self.sample_interval_s = sample_interval_s

    def poll(self) -> None:
        """Fetch new samples from every agent (the controller does this once per tick via :meth:`fleet`)."""
        for inst in self.instances:
            agent = self._agent_of(inst.instance_id)
            if agent is None:
                continue
            try:
                samples: Sequence[ResourceSample] = agent.samples(self._seen_until[inst.instance_id])
            except AgentControlError as exc:
                log.warning("telemetry: %s", exc)
                continue
            except (TypeError, KeyError, ValueError) as exc:  # a malformed answer: one line, not a crash
                log.warning("telemetry: agent of %s sent malformed samples: %s", inst.instance_id, exc)
                continue
            for s in samples:
                self._history[inst.instance_id].append(s.cpu_util)
                self._memory[inst.instance_id] = s.memory_bytes or self._memory[inst.instance_id]
                self._seen_until[inst.instance_id] = max(self._seen_until[inst.instance_id], s.timestamp)

    def record(self, instance_id: str, sample: ResourceSample) -> None:
        """Add one sample obtained another way (e.g. pushed by an agent) to an instance's history."""
        self._history[instance_id].append(sample.cpu_util)
        self._memory[instance_id] = sample.memory_bytes or self._memory[instance_id]
        self._seen_until[instance_id] = max(self._seen_until[instance_id], sample.timestamp)

    def fleet(self, history_len: int) -> FleetSnapshot:
        """The current view with the last ``history_len`` CPU samples of every instance."""
        self.poll()
        placement = self._placement()
        n_i, n_h = len(self.instances), len(self.hosts)
        hist = np.full((n_i, history_len), np.nan)
        instance_host = np.full(n_i, -1, dtype=np.int64)
        capacity = np.empty(n_i)
        for i, inst in enumerate(self.instances):
            samples = list(self._history[inst.instance_id])[-history_len:]
            if samples:
                hist[i, history_len - len(samples) :] = samples
            host = placement.get(inst.instance_id)
            if host is not None:
                if host not in self._host_index:
                    raise ValueError(f"placement: instance {inst.instance_id!r} is on unknown host {host!r}")
                instance_host[i] = self._host_index[host]
            capacity[i] = inst.cores * self.mips_per_core
        last = hist[:, -1] if history_len else np.full(n_i, np.nan)
        request = np.where(np.isnan(last), 0.0, last) * capacity
        moving = self._in_migration() if self._in_migration is not None else frozenset()
        health = self._host_health()
        return FleetSnapshot(
            now_s=self._clock.now(),
            ivn_names=self.ivns,
            host_ids=tuple(h.host_id for h in self.hosts),
            host_ivn=np.array([self.ivns.index(h.ivn) for h in self.hosts], dtype=np.int64),
            host_cpu_capacity_mips=np.array([h.cores * self.mips_per_core for h in self.hosts]),
            host_pe_mips=np.full(n_h, self.mips_per_core),
            host_ram_bytes=np.array([h.ram_bytes for h in self.hosts], dtype=np.float64),
            host_power_w=np.array([h.power_w for h in self.hosts], dtype=np.float64),
            host_available=np.ones(n_h, dtype=bool),
            instance_ids=tuple(i.instance_id for i in self.instances),
            instance_host=instance_host,
            instance_cpu_capacity_mips=capacity,
            instance_cpu_request_mips=request,
            instance_ram_bytes=np.array([self._memory[i.instance_id] for i in self.instances], dtype=np.float64),
            instance_in_migration=np.array([i.instance_id in moving for i in self.instances], dtype=bool),
            instance_cpu_history=hist,
            instance_pes=np.array([max(1, math.ceil(i.cores)) for i in self.instances], dtype=np.int64),
            host_pes=np.array([max(1, math.floor(h.cores)) for h in self.hosts], dtype=np.int64),
            host_health=health,
            ivn_cost_per_gb_hour=self._cost,
            declared_events=self.declared_events,
            history_step_s=self.sample_interval_s,
        )

    def health_metrics(self, instance_id: str) -> Mapping[str, float]:
        """Latest readings of the host running ``instance_id`` (empty when unknown)."""
        host = self._placement().get(instance_id)
        if host is None:
            return {}
        if self._health is not None:
            self._latest_health = {h: dict(m) for h, m in self._health.readings().items()}
        return dict(self._latest_health.get(host, {}))

    def _host_health(self) -> dict[str, np.ndarray] | None:
        """Per metric, one value per host (NaN where a host reported nothing); ``None`` without a source."""
        if self._health is None:
            return None
        self._latest_health = {h: dict(m) for h, m in self._health.readings().items()}
        metrics = sorted({m for readings in self._latest_health.values() for m in readings})
        out: dict[str, np.ndarray] = {}
        for metric in metrics:
            out[metric] = np.array(
                [self._latest_health.get(h.host_id, {}).get(metric, np.nan) for h in self.hosts], dtype=np.float64
            )
        return out
