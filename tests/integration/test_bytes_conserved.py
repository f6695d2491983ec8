"""Bytes are conserved across a whole run: every byte a transfer set out to send was delivered, lost
to a failure, or is still in flight when the run ends — for snapshots and migrations alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirrortwin.config import load_settings
from mirrortwin.wiring import run_named

pytestmark = pytest.mark.usefixtures("traces_root")


def _check(summary: dict) -> None:
    net = summary["network_bytes"]
    tags = set(net["started"]) | set(net["delivered"]) | set(net["lost"])
    assert tags, "the run moved no bytes"
    for tag in tags:
        started = net["started"].get(tag, 0.0)
        accounted = net["delivered"].get(tag, 0.0) + net["lost"].get(tag, 0.0) + net["in_flight"].get(tag, 0.0)
        assert accounted == pytest.approx(started, rel=1e-9, abs=1.0), tag


@settings(max_examples=6, deadline=None)
@given(
    fail_at=st.lists(st.floats(600.0, 7000.0), min_size=1, max_size=3),
    host=st.integers(0, 31),
    interval=st.sampled_from([60.0, 300.0]),
)
def test_bytes_conserved_with_failures_cutting_transfers(fail_at, host, interval):
    times = [{"host": f"ivn-a/h{host:05d}", "at_s": t} for t in sorted(fail_at)]
    overrides = {
        "duration_s": 7200.0,
        "failures.enabled": True,
        "failures.model": "list",
        "failures.times": times,
        "failures.repair_s": 900.0,
        "rma.snapshot_interval_s": interval,
    }
    result = run_named("smoke", policy="threshold", overrides=overrides, settings=load_settings())
    _check(result.summary)


def test_bytes_conserved_in_a_plain_run():
    _check(run_named("smoke", policy="threshold", overrides={}, settings=load_settings()).summary)
