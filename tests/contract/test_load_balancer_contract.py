"""The LoadBalancer port behaves the same in the fake and in the real HAProxy adapter.

One scenario (progressive weights, health of a live and a dead replacement, redirect, rollback) runs
against :class:`tests.fakes.fake_load_balancer.FakeLoadBalancer` and against
:class:`realworld.haproxy.HAProxyLoadBalancer` fronting real HTTP servers, through a small harness that
hides only how each one waits (fake clock vs. wall clock) and how it reports the current split.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from policies.ports import LoadBalancer
from policies.waiting import Operation
from realworld.haproxy import WEIGHT_TOTAL, HAProxyLoadBalancer, free_tcp_port
from tests.fakes.event_log import EventLog
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_load_balancer import FakeLoadBalancer
from tests.live_processes import NamedBackend, haproxy_bin, named_backends  # noqa: F401  (fixtures)

INSTANCE, GOOD, DEAD = "web", "web@B#1", "web@B#2"


class Harness(Protocol):
    lb: LoadBalancer

    def wait(self, operation: Operation[bool]) -> bool: ...

    def split(self, instance_id: str) -> Mapping[str, float]: ...

    def serving(self, instance_id: str) -> set[str]: ...


class FakeHarness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.lb = FakeLoadBalancer(self.clock, EventLog(self.clock), health={DEAD: [False]})

    def wait(self, operation: Any) -> bool:
        self.clock.advance_to(max(self.clock.now(), operation.completes_at))
        return bool(operation.result())

    def split(self, instance_id: str) -> Mapping[str, float]:
        return {backend: weight for backend, weight in self.lb.weights[instance_id].items() if weight > 0}

    def serving(self, instance_id: str) -> set[str]:
        return self.lb.serving(instance_id)


class HAProxyHarness:
    def __init__(self, lb: HAProxyLoadBalancer) -> None:
        self.lb = lb

    def wait(self, operation: Operation[bool]) -> bool:
        deadline = time.monotonic() + 30
        while not operation.done():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return bool(operation.result())

    def split(self, instance_id: str) -> Mapping[str, float]:
        return {backend: weight for backend, weight in self.lb.weights(instance_id).items() if weight > 0}

    def serving(self, instance_id: str) -> set[str]:
        return self.lb.serving(instance_id)


@pytest.fixture(params=["fake", "haproxy"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "fake":
        yield FakeHarness()
        return
    binary: str = request.getfixturevalue("haproxy_bin")
    backends: list[NamedBackend] = request.getfixturevalue("named_backends")
    source, replacement, _ = backends
    with HAProxyLoadBalancer.start(tmp_path / "haproxy", haproxy_bin=binary) as lb:
        lb.add_service(
            INSTANCE,
            "127.0.0.1",
            free_tcp_port("127.0.0.1"),
            mode="http",
            server_address=source.address,
            server_port=source.port,
            health="http:/",
        )
        lb.register_backend(INSTANCE, GOOD, replacement.address, replacement.port)
        lb.register_backend(INSTANCE, DEAD, "127.0.0.1", free_tcp_port("127.0.0.1"))
        yield HAProxyHarness(lb)


def assert_split(actual: Mapping[str, float], expected: Mapping[str, float]) -> None:
    assert set(actual) == {backend for backend, weight in expected.items() if weight > 0}
    for backend, weight in actual.items():
        assert weight == pytest.approx(expected[backend], abs=1 / WEIGHT_TOTAL)


def test_progressive_shift_then_redirect(harness: Harness) -> None:
    assert harness.wait(harness.lb.check_health(GOOD)) is True
    for step in (0.1, 0.25, 0.5, 1.0):
        weights = {INSTANCE: 1.0 - step, GOOD: step}
        harness.lb.set_weights(INSTANCE, weights)
        assert_split(harness.split(INSTANCE), weights)
        assert harness.wait(harness.lb.check_health(GOOD)) is True
    harness.lb.redirect(INSTANCE, GOOD)
    assert harness.serving(INSTANCE) == {GOOD}


def test_unhealthy_replacement_is_rolled_back(harness: Harness) -> None:
    harness.lb.set_weights(INSTANCE, {INSTANCE: 1.0, DEAD: 0.0})
    assert harness.wait(harness.lb.check_health(DEAD)) is False
    harness.lb.rollback(INSTANCE, DEAD)
    assert harness.serving(INSTANCE) == {INSTANCE}
    assert_split(harness.split(INSTANCE), {INSTANCE: 1.0})
