"""Helpers of the live end-to-end tests: a two-IVN Redis fleet config and a run-until-outcome loop."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mirrortwin.live_config import LiveConfig
from mirrortwin.live_fleet import LiveFleet
from realworld.loadgen import LoadReport, RedisLoad
from tests.servers.redis_server import free_port


def require_live_tools() -> None:
    """Skip without HAProxy/Redis (fail under CI, where .ci/system-packages installs them)."""
    missing = [b for b in ("haproxy", "redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing; .ci/system-packages installs them")
        pytest.skip(f"{', '.join(missing)} not installed")


def two_ivn_config(workdir: Path, **overrides: Any) -> LiveConfig:
    """ivn-a runs redis-1 and mirrors into ivn-b's store; ivn-b mirrors back into ivn-a's."""
    raw: dict[str, Any] = {
        "workdir": str(workdir),
        "network": "auto",
        "agent_sample_interval_s": 0.5,
        "ivns": [
            {"name": "ivn-a", "mirror_to": "ivn-b",
             "hosts": [{"name": "h0", "cores": 2, "memory_mb": 2048}, {"name": "h1", "cores": 2, "memory_mb": 2048}]},
            {"name": "ivn-b", "mirror_to": "ivn-a", "hosts": [{"name": "h0", "cores": 2, "memory_mb": 2048}]},
        ],
        "apps": {"redis": {"kind": "redis", "cores": 0.5, "memory_mb": 256}},
        "instances": [{"id": "redis-1", "app": "redis", "ivn": "ivn-a", "host": "h0",
                       "read_port": free_port(), "write_port": free_port(), "snapshot_interval_s": 2}],
        "controller": {"policy": "health-evacuate", "params": {"ratio": 8.0}, "interval_s": 1.0, "history_len": 5,
                       "workflow": {"risk_threshold": 0.5, "traffic_steps": [0.25, 0.5, 1.0], "dwell_s": 1.0}},
    }
    raw.update(overrides)
    return LiveConfig.model_validate(raw)


def write_health(fleet: LiveFleet, sick_host: str | None) -> None:
    """Every host reports 1 memory error per interval; ``sick_host`` reports 50 (the injected risk)."""
    readings = {LiveConfig.host_id(i.name, h.name): {"memory_errors": 1.0} for i in fleet.config.ivns for h in i.hosts}
    if sick_host is not None:
        readings[sick_host] = {"memory_errors": 50.0}
    path = fleet.workdir / fleet.config.health_file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(readings))
    tmp.replace(path)


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def migrate_under_load(
    fleet: LiveFleet, *, seed: int = 0, timeout_s: float = 90.0, hops: int = 1
) -> tuple[Any, LoadReport, RedisLoad]:
    """Run the controller with a load through HAProxy, inject the risk signal, await the first outcome.

    With ``hops`` > 1 the host the instance runs on next is made sick again after each outcome, so
    the same instance moves several times. Then stop, and verify every acknowledged write through the
    write port. Returns the last outcome.
    """
    inst = fleet.config.instances[0]
    write_health(fleet, None)
    runner = threading.Thread(target=fleet.run, kwargs={"duration_s": timeout_s + 30}, daemon=True)
    runner.start()
    load = RedisLoad(("127.0.0.1", inst.write_port), ("127.0.0.1", inst.read_port), rng=np.random.default_rng(seed),
                     rate_per_s=200, duration_s=timeout_s + 30, retry_budget_s=2.0)
    load.start()
    try:
        target = fleet.config.ivn(inst.ivn).mirror_to
        wait_for(lambda: fleet.store_for(target, inst.id) is not None
                 and fleet.store_for(target, inst.id).latest(inst.id) is not None, 30, "a first mirror snapshot")
        time.sleep(1.0)  # writes after the snapshot, which only catch-up can carry
        for hop in range(hops):
            write_health(fleet, fleet.placement()[inst.id])
            result = wait_for(lambda hop=hop: fleet.controller.results[hop] if len(fleet.controller.results) > hop
                              else None, timeout_s, f"migration outcome {hop + 1}")
            write_health(fleet, None)
            if hop + 1 < hops:  # the next hop restores from a mirror of the new process
                new_ivn = fleet.placement()[inst.id].split("/")[0]
                target = fleet.config.ivn(new_ivn).mirror_to
                moved_at = time.time()

                def fresh_mirror(target: str = target, since: float = moved_at) -> bool:
                    client = fleet.store_for(target, inst.id)
                    latest = client.latest(inst.id) if client is not None else None
                    return latest is not None and latest.timestamp > since

                wait_for(fresh_mirror, 30, "a mirror snapshot of the replacement")
        time.sleep(1.0)  # load keeps running on the final layout
    finally:
        report = load.stop()
        write_health(fleet, None)
        fleet.stop()
        runner.join(timeout=30)
    load.verify(("127.0.0.1", inst.write_port))
    return result, report, load
