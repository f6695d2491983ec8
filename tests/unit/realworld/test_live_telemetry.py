"""The live telemetry port builds the same FleetSnapshot columns the twin does, from agent samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from policies.health_policy import HealthEvacuationPolicy
from policies.records import MoveReason
from realworld.agent.control_client import AgentControlError
from realworld.agent.samples import ResourceSample
from realworld.health import EdacHealthSource, HealthFileSource
from realworld.mirror_port import LiveMirrorStore
from realworld.telemetry import LiveHost, LiveInstance, LiveTelemetry


class FakeAgent:
    """Duck-types AgentControlClient: serves queued samples, records interval changes."""

    def __init__(self, samples=(), *, broken=False):
        self.queue = list(samples)
        self.broken = broken
        self.intervals: list[float] = []

    def samples(self, since):
        if self.broken:
            raise AgentControlError("agent http://x: GET /v1/samples failed: refused")
        out = [s for s in self.queue if s.timestamp > since]
        return out

    def set_interval(self, interval_s):
        self.intervals.append(interval_s)


def sample(t, cpu, memory):
    return ResourceSample(t, cpu, memory, 0.0, 0.0, 0.0, 0.0)


class Clock:
    def now(self):
        return 1_000.0


HOSTS = [LiveHost("a/h0", "ivn-a", 2, 4e9), LiveHost("a/h1", "ivn-a", 2, 4e9), LiveHost("b/h0", "ivn-b", 4, 8e9)]


def make(agents, placement, health=None):
    instances = [LiveInstance(f"vm{i}", 1, 1e9) for i in range(len(agents))]
    by_id = {f"vm{i}": agent for i, agent in enumerate(agents)}
    return LiveTelemetry(hosts=HOSTS, ivns=["ivn-a", "ivn-b"], instances=instances, agent_of=by_id.get,
                         placement=lambda: placement, clock=Clock(), health=health)


def test_history_is_newest_last_nan_padded_and_memory_follows_the_agent():
    agent = FakeAgent([sample(t, t / 10, 2e9) for t in (1.0, 2.0, 3.0)])
    tel = make([agent, None], {"vm0": "a/h1"})
    fleet = tel.fleet(5)
    assert np.isnan(fleet.instance_cpu_history[0, :2]).all()
    assert fleet.instance_cpu_history[0, 2:].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert np.isnan(fleet.instance_cpu_history[1]).all()
    assert fleet.instance_host.tolist() == [1, -1]
    assert fleet.instance_ram_bytes.tolist() == [2e9, 1e9]
    assert fleet.instance_cpu_request_mips[0] == pytest.approx(0.3 * 1000)
    assert fleet.host_ivn.tolist() == [0, 0, 1] and fleet.host_cpu_capacity_mips.tolist() == [2000, 2000, 4000]
    agent.queue.append(sample(4.0, 0.9, 0))
    assert tel.fleet(2).instance_cpu_history[0].tolist() == pytest.approx([0.3, 0.9])  # only new samples added


def test_an_unreachable_agent_leaves_the_view_intact():
    tel = make([FakeAgent(broken=True)], {"vm0": "a/h0"})
    fleet = tel.fleet(3)
    assert np.isnan(fleet.instance_cpu_history).all() and fleet.instance_host.tolist() == [0]


def test_unknown_hosts_and_ivns_are_named():
    with pytest.raises(ValueError, match="IVN"):
        LiveTelemetry(hosts=[LiveHost("x", "ivn-z", 1, 1)], ivns=["ivn-a"], instances=[],
                      agent_of=lambda _: None, placement=dict, clock=Clock())
    with pytest.raises(ValueError, match="unknown host 'nowhere'"):
        make([None], {"vm0": "nowhere"}).fleet(2)


def test_an_injected_health_reading_makes_the_same_policy_evacuate(tmp_path):
    path = tmp_path / "health.json"
    path.write_text(json.dumps({"a/h0": {"memory_errors": 1}, "a/h1": {"memory_errors": 1},
                                "b/h0": {"memory_errors": 1}}))
    tel = make([FakeAgent(), FakeAgent()], {"vm0": "a/h0", "vm1": "a/h1"}, HealthFileSource(path))
    policy = HealthEvacuationPolicy(ratio=8)
    assert policy.decide(tel.fleet(3)).moves == ()
    path.write_text(json.dumps({"a/h0": {"memory_errors": 40}, "a/h1": {"memory_errors": 1},
                                "b/h0": {"memory_errors": 1}}))
    moves = policy.decide(tel.fleet(3)).moves
    assert [(m.instance_id, m.target_ivn, m.reason) for m in moves] == [("vm0", "ivn-b", MoveReason.FAILURE_RISK)]
    assert tel.health_metrics("vm0") == {"memory_errors": 40.0}
    path.write_text("{half written")  # a torn exporter file keeps the last good readings
    assert tel.health_metrics("vm0") == {"memory_errors": 40.0}


def test_bad_health_documents_are_named(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"a/h0": {"memory_errors": "many"}}))
    assert HealthFileSource(path).readings() == {}
    with pytest.raises(ValueError, match="'a/h0' metric 'memory_errors'"):
        from realworld.health import parse_health_document

        parse_health_document({"a/h0": {"memory_errors": math.nan}}, where="h.json")


def test_edac_counts_errors_since_the_last_reading(tmp_path):
    (tmp_path / "mc0").mkdir()
    (tmp_path / "mc0" / "ce_count").write_text("5\n")
    (tmp_path / "mc0" / "ue_count").write_text("0\n")
    source = EdacHealthSource("a/h0", tmp_path)
    assert source.available() and source.readings() == {"a/h0": {"memory_errors": 0.0}}
    (tmp_path / "mc0" / "ce_count").write_text("9\n")
    assert source.readings() == {"a/h0": {"memory_errors": 4.0}}
    assert EdacHealthSource("x", tmp_path / "absent").readings() == {}


class FakeInfo:
    snapshot_id, instance_id, timestamp, logical_bytes = "s-1", "vm0", 12.5, 4096
    process_list, file_list = ("redis-server",), ("dump.rdb",)


class FakeStoreClient:
    def __init__(self, info=None, error=None):
        self.info, self.error = info, error

    def latest(self, instance_id):
        if self.error:
            raise self.error
        return self.info


def test_live_mirror_store_maps_store_info_to_the_specification_record_and_forwards_intervals():
    agent = FakeAgent()
    stores = {"ivn-b": FakeStoreClient(FakeInfo()), "ivn-c": FakeStoreClient(error=OSError("down"))}
    port = LiveMirrorStore(lambda ivn, instance_id: stores.get(ivn), {"vm0": agent}.get)
    snap = port.latest_snapshot("vm0", "ivn-b")
    assert (snap.instance_id, snap.timestamp, snap.memory_image, snap.ivn, snap.snapshot_id) == (
        "vm0", 12.5, 4096, "ivn-b", "s-1")
    assert snap.process_list == ("redis-server",) and snap.file_list == ("dump.rdb",)
    assert port.latest_snapshot("vm0", "ivn-c") is None and port.latest_snapshot("vm0", "ivn-x") is None
    port.set_snapshot_interval("vm0", 30)
    assert agent.intervals == [30.0]
    with pytest.raises(ValueError, match="interval_s"):
        port.set_snapshot_interval("vm0", -1)


def test_declared_events_reach_the_fleet_view_but_never_a_real_effect():
    from policies.scheduled_events import ScheduledEvent

    event = ScheduledEvent("launch", 100.0, 200.0, multiplier=2.0, kind="campaign", instance_ids=("vm0",))
    tel = LiveTelemetry(hosts=HOSTS, ivns=["ivn-a", "ivn-b"], instances=[LiveInstance("vm0", 1, 1e9)],
                        agent_of=lambda _: None, placement=lambda: {"vm0": "a/h0"}, clock=Clock(),
                        declared_events=[event], sample_interval_s=1.0)
    fleet = tel.fleet(3)
    assert fleet.declared_events == (event,) and fleet.history_step_s == 1.0
