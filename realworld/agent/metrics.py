"""Prometheus exposition of an agent: the latest sample as gauges, snapshot counters and timings.

A custom collector reads the agent's state at scrape time, so nothing is updated twice and a scrape
always shows one consistent copy of the counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from realworld.agent.agent import MirroringAgent

#: Sample field -> (metric name, help). Rates are per second over the last sampling interval.
SAMPLE_GAUGES: dict[str, tuple[str, str]] = {
    "cpu_util": ("mirrortwin_instance_cpu_util", "CPU use as a fraction of the cores the instance is allotted"),
    "memory_bytes": ("mirrortwin_instance_memory_bytes", "Resident memory of the instance (RSS or PSS sum)"),
    "net_rx_bps": ("mirrortwin_instance_net_rx_bytes_per_second", "Bytes/s received in the instance's netns"),
    "net_tx_bps": ("mirrortwin_instance_net_tx_bytes_per_second", "Bytes/s sent from the instance's netns"),
    "disk_read_bps": ("mirrortwin_instance_disk_read_bytes_per_second", "Bytes/s the instance read from storage"),
    "disk_write_bps": ("mirrortwin_instance_disk_write_bytes_per_second", "Bytes/s the instance wrote to storage"),
    "timestamp": ("mirrortwin_instance_sample_timestamp_seconds", "Epoch time of the latest sample"),
}


class AgentCollector(Collector):
    """Collects one agent's metrics, labelled with its ``instance_id``."""

    def __init__(self, agent: MirroringAgent) -> None:
        self._agent = agent

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family of the agent now."""
        agent = self._agent
        label = [agent.instance_id]
        latest = agent.samples.latest()
        if latest is not None:
            values = latest.as_dict()
            for field, (name, text) in SAMPLE_GAUGES.items():
                yield _gauge(name, text, label, float(values[field]))
        c = agent.counters()
        yield _counter("mirrortwin_agent_samples", "Samples taken", label, c.samples_taken)
        yield _counter("mirrortwin_agent_sample_errors", "Sampling attempts that failed", label, c.sample_errors)
        snapshots = CounterMetricFamily(
            "mirrortwin_agent_snapshots", "Snapshots by result (ok, failed, skipped)", labels=["instance_id", "result"]
        )
        for result, value in (("ok", c.snapshots_ok), ("failed", c.snapshots_failed), ("skipped", c.snapshots_skipped)):
            snapshots.add_metric([*label, result], value)
        yield snapshots
        volume = CounterMetricFamily(
            "mirrortwin_agent_snapshot_bytes",
            "Bytes of committed snapshots: captured (logical), sent to the store, stored anew",
            labels=["instance_id", "kind"],
        )
        for kind, value in (
            ("logical", c.logical_bytes_total),
            ("sent", c.sent_bytes_total),
            ("stored", c.stored_bytes_total),
        ):
            volume.add_metric([*label, kind], value)
        yield volume
        seconds = CounterMetricFamily(
            "mirrortwin_agent_snapshot_seconds", "Time spent in snapshots by phase", labels=["instance_id", "phase"]
        )
        seconds.add_metric([*label, "capture"], c.capture_seconds_total)
        seconds.add_metric([*label, "upload"], c.upload_seconds_total)
        yield seconds
        last = GaugeMetricFamily(
            "mirrortwin_agent_last_snapshot_duration_seconds",
            "Phases of the latest committed snapshot",
            labels=["instance_id", "phase"],
        )
        last.add_metric([*label, "capture"], c.last_capture_s)
        last.add_metric([*label, "upload"], c.last_upload_s)
        yield last
        if c.last_success_at is not None:
            yield _gauge(
                "mirrortwin_agent_last_snapshot_age_seconds",
                "Seconds since the latest committed snapshot finished",
                label,
                max(0.0, time.time() - c.last_success_at),
            )
        yield _gauge(
            "mirrortwin_agent_snapshot_interval_seconds", "Configured snapshot interval", label, agent.interval_s
        )
        yield _gauge(
            "mirrortwin_agent_snapshot_in_flight", "1 while a snapshot is capturing or uploading", label, agent.busy
        )
        yield _gauge(
            "mirrortwin_agent_consecutive_failures",
            "Snapshot failures since the last success",
            label,
            c.consecutive_failures,
        )


def _gauge(name: str, text: str, label: list[str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=["instance_id"])
    family.add_metric(label, float(value))
    return family


def _counter(name: str, text: str, label: list[str], value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["instance_id"])
    family.add_metric(label, float(value))
    return family


def agent_registry(agent: MirroringAgent) -> CollectorRegistry:
    """A registry holding only this agent's collector (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    return registry
