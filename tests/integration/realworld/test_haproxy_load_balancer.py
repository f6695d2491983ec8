"""HAProxyLoadBalancer against a real HAProxy 2.6 and real HTTP backends that answer their own name."""

from __future__ import annotations

import collections
import math
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from realworld.haproxy import HAProxyLoadBalancer, LoadBalancerError, free_tcp_port, integer_weights
from realworld.operations import FutureOperation
from tests.live_processes import NamedBackend

REQUESTS = 400  # bounded load: every loop below sends at most this many requests


@pytest.fixture
def lb(tmp_path: Path, haproxy_bin: str, named_backends: list[NamedBackend]) -> Iterator[HAProxyLoadBalancer]:
    """HAProxy fronting instance ``a`` (backend a) in http mode, with ``b`` registered as a replacement."""
    a, b, _ = named_backends
    with HAProxyLoadBalancer.start(tmp_path / "haproxy", haproxy_bin=haproxy_bin, health_timeout_s=10) as balancer:
        balancer.add_service(
            "a",
            "127.0.0.1",
            free_tcp_port("127.0.0.1"),
            mode="http",
            server_address=a.address,
            server_port=a.port,
            health="http:/",
        )
        balancer.register_backend("a", "a@B#1", b.address, b.port)
        yield balancer


def front_port(lb: HAProxyLoadBalancer) -> int:
    return lb.frontend("a")[1]


def get_names(port: int, count: int) -> collections.Counter[str]:
    """Send ``count`` GETs (each on a new connection) and count which backend answered."""
    names: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            names[response.read().decode()] += 1
    return names


def wait(operation: FutureOperation[bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not operation.done():
        assert time.monotonic() < deadline, f"{operation.label} did not finish"
        time.sleep(0.02)
    return operation.result()


def test_integer_weights_sum_exactly_and_keep_positive_shares() -> None:
    assert integer_weights({"a": 0.9, "b": 0.1}) == {"a": 230, "b": 26}
    assert sum(integer_weights({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}).values()) == 256
    assert integer_weights({"a": 0.9999, "b": 0.0001}) == {"a": 255, "b": 1}
    assert integer_weights({"a": 1.0, "b": 0.0}) == {"a": 256, "b": 0}
    with pytest.raises(ValueError, match=r"weights\['b'\]"):
        integer_weights({"a": 1.5, "b": -0.5})
    with pytest.raises(ValueError, match="sum to 1"):
        integer_weights({"a": 0.5})


def test_weights_split_requests_as_asked(lb: HAProxyLoadBalancer) -> None:
    port = front_port(lb)
    lb.set_weights("a", {"a": 0.9, "a@B#1": 0.1})
    assert wait(lb.check_health("a@B#1"))  # the replacement must be UP to take its share
    names = get_names(port, REQUESTS)
    # Binomial(400, 0.1): sd 6; five sd of tolerance keeps the test from ever flaking on a correct split.
    expected, sd = REQUESTS * 0.1, math.sqrt(REQUESTS * 0.1 * 0.9)
    assert abs(names["b"] - expected) <= 5 * sd, names
    assert names["a"] + names["b"] == REQUESTS


def test_health_passes_for_live_and_fails_for_dead_server(
    lb: HAProxyLoadBalancer, named_backends: list[NamedBackend]
) -> None:
    assert wait(lb.check_health("a@B#1")) is True
    named_backends[1].stop()
    operation = lb.check_health("a@B#1")
    assert wait(operation) is False
    assert "DOWN" in operation.reason


def test_drain_takes_a_server_out_of_new_traffic_but_keeps_it_healthy(lb: HAProxyLoadBalancer) -> None:
    lb.set_weights("a", {"a": 0.5, "a@B#1": 0.5})
    assert wait(lb.check_health("a@B#1"))
    lb.drain("a")
    assert get_names(front_port(lb), 20) == {"b": 20}
    assert wait(lb.check_health("a")) is True  # draining servers are still checked and pass


def test_redirect_sends_everything_to_the_replacement(lb: HAProxyLoadBalancer) -> None:
    lb.set_weights("a", {"a": 0.75, "a@B#1": 0.25})
    assert wait(lb.check_health("a@B#1"))
    lb.redirect("a", "a@B#1")
    assert lb.serving("a") == {"a@B#1"}
    assert lb.server_status("a")["status"].startswith("DRAIN")
    assert get_names(front_port(lb), 30) == {"b": 30}


def test_redirect_hook_decides_the_switch_moment(
    tmp_path: Path, haproxy_bin: str, named_backends: list[NamedBackend]
) -> None:
    a, b, _ = named_backends
    seen: list[str] = []

    def hook(instance_id: str, replacement_id: str, switch: object) -> None:
        seen.append(f"before {sorted(balancer.serving(instance_id))}")
        switch()  # type: ignore[operator]
        seen.append(f"after {sorted(balancer.serving(instance_id))}")

    with HAProxyLoadBalancer.start(tmp_path / "h", haproxy_bin=haproxy_bin, redirect_hook=hook) as balancer:
        balancer.add_service("a", "127.0.0.1", free_tcp_port("127.0.0.1"), server_address=a.address, server_port=a.port)
        balancer.register_backend("a", "r", b.address, b.port)
        assert wait(balancer.check_health("r"))
        balancer.redirect("a", "r")
    assert seen == ["before ['a']", "after ['r']"]


def test_rollback_returns_traffic_and_deletes_the_dynamic_server(lb: HAProxyLoadBalancer) -> None:
    lb.set_weights("a", {"a": 0.5, "a@B#1": 0.5})
    assert wait(lb.check_health("a@B#1"))
    assert lb.serving("a") == {"a", "a@B#1"}
    lb.rollback("a", "a@B#1")
    assert lb.serving("a") == {"a"}
    assert "s_a_B_1" not in lb.command("show servers state", ok=())
    with pytest.raises(LoadBalancerError, match="unknown backend 'a@B#1'"):
        lb.server_status("a@B#1")
    assert get_names(front_port(lb), 20) == {"a": 20}


def test_dynamic_servers_are_added_and_deleted_at_run_time(
    lb: HAProxyLoadBalancer, named_backends: list[NamedBackend]
) -> None:
    c = named_backends[2]
    lb.register_backend("a", "a@C#2", c.address, c.port)
    state = lb.command("show servers state", ok=())
    assert "s_a_C_2-" in state
    assert wait(lb.check_health("a@C#2"))
    lb.rollback("a", "a@C#2")
    assert "s_a_C_2-" not in lb.command("show servers state", ok=())


def test_bad_requests_raise_one_clear_error(lb: HAProxyLoadBalancer) -> None:
    with pytest.raises(LoadBalancerError, match=r"'set server svc_nope/x weight 1' failed: No such backend"):
        lb.command("set server svc_nope/x weight 1")
    with pytest.raises(LoadBalancerError, match="set_weights: backend"):
        lb.set_weights("a", {"ghost": 1.0})
    with pytest.raises(LoadBalancerError, match="instance 'ghost' is not fronted"):
        lb.set_weights("ghost", {"a": 1.0})
    with pytest.raises(LoadBalancerError, match="already registered"):
        lb.register_backend("a", "a@B#1", "127.0.0.1", 1)
    with pytest.raises(ValueError, match="health:"):
        lb.add_service("x", "127.0.0.1", 1, server_address="127.0.0.1", server_port=2, health="icmp")


def test_the_stats_page_is_served_on_loopback_for_humans(lb: HAProxyLoadBalancer) -> None:
    assert lb.stats_url is not None and lb.stats_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(lb.stats_url, timeout=5) as response:
        assert response.status == 200
        assert lb.server_status("a@B#1")["pxname"].encode() in response.read()


def test_close_stops_haproxy_and_removes_its_files(
    tmp_path: Path, haproxy_bin: str, named_backends: list[NamedBackend]
) -> None:
    workdir = tmp_path / "gone"
    balancer = HAProxyLoadBalancer.start(workdir, haproxy_bin=haproxy_bin)
    process = balancer._process
    assert process is not None and process.poll() is None
    balancer.close()
    assert process.poll() is not None
    assert not workdir.exists()


def test_after_redirect_the_old_server_can_be_removed(lb: HAProxyLoadBalancer) -> None:
    assert wait(lb.check_health("a@B#1"))
    lb.redirect("a", "a@B#1")
    lb.remove_backend("a")
    assert lb.serving("a@B#1") == {"a@B#1"}
    assert lb.serving("a") == {"a@B#1"}  # the service keeps its name
    with pytest.raises(LoadBalancerError, match="last server"):
        lb.remove_backend("a@B#1")
    assert get_names(front_port(lb), 10) == {"b": 10}


def test_an_attached_adapter_drives_the_same_haproxy(lb: HAProxyLoadBalancer) -> None:
    assert wait(lb.check_health("a@B#1"))
    with HAProxyLoadBalancer.attach(lb.socket_path) as attached:
        with pytest.raises(LoadBalancerError, match=r"no server .* for backend 'ghost'"):
            attached.adopt_service("a", ["a", "ghost"])
        attached.adopt_service("a", ["a", "a@B#1"])
        attached.set_weights("a", {"a": 0.25, "a@B#1": 0.75})
        assert lb.weights("a") == {"a": 0.25, "a@B#1": 0.75}
        attached.redirect("a", "a@B#1")
    assert lb._process is not None and lb._process.poll() is None  # closing an attached adapter stops nothing
    assert lb.serving("a") == {"a@B#1"}


def test_adding_a_service_reloads_without_losing_runtime_state(
    lb: HAProxyLoadBalancer, named_backends: list[NamedBackend]
) -> None:
    lb.set_weights("a", {"a": 0.25, "a@B#1": 0.75})
    c = named_backends[2]
    lb.add_service(
        "c",
        "127.0.0.1",
        free_tcp_port("127.0.0.1"),
        mode="http",
        server_address=c.address,
        server_port=c.port,
        health="http:/",
    )
    assert wait(lb.check_health("a@B#1")) and wait(lb.check_health("c"))
    assert lb.weights("a") == {"a": 0.25, "a@B#1": 0.75}  # the dynamic server and its weight survived
    assert get_names(lb.frontend("c")[1], 5) == {"c": 5}
    lb.rollback("a", "a@B#1")  # a server written into the config by the reload can still be deleted
    assert lb.serving("a") == {"a"}


def test_a_workdir_too_long_for_unix_sockets_is_refused_by_name(tmp_path: Path, haproxy_bin: str) -> None:
    with pytest.raises(LoadBalancerError, match=r"workdir: .* too long"):
        HAProxyLoadBalancer.start(tmp_path / ("x" * 120), haproxy_bin=haproxy_bin)
    assert not (tmp_path / ("x" * 120)).exists()
