"""IVNs as network namespaces: real namespaces, veths and processes (root only; required under CI=true)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mirrortwin.config import load_settings
from realworld.ivn import IvnError, IvnNetworks, cleanup_leftovers, netns_available
from tests.live_processes import REPO_ROOT, wait_for_port

SERVER = (
    "import socket,sys\ns=socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "while True:\n    c,_=s.accept(); c.sendall(b'hi'); c.close()"
)
CLIENT = (
    "import socket,sys; print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).recv(2).decode())"
)


def require_netns() -> None:
    """Skip without root/netns, except under CI=true, where that is a failure."""
    available, why = netns_available()
    if not available:
        if load_settings().ci:
            pytest.fail(f"network namespaces are required under CI=true: {why}")
        pytest.skip(f"network namespaces unavailable: {why}")


@pytest.fixture
def networks() -> Iterator[IvnNetworks]:
    require_netns()
    with IvnNetworks(["A", "B"], mode="netns") as ivns:
        yield ivns


def test_a_server_in_ivn_a_is_reached_from_the_root_namespace_through_our_veth(networks: IvnNetworks) -> None:
    a = networks.addresses("A")
    assert a.namespace is not None and a.host_veth is not None
    route = json.loads(
        subprocess.run(
            ["ip", "-j", "route", "get", a.instance_address], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert route["dev"] == a.host_veth
    server = networks.run_in("A", [sys.executable, "-c", SERVER, a.instance_address, "7001"])
    try:
        assert server.pid != os.getpid()
        wait_for_port(a.instance_address, 7001)
        # The server is not in the root namespace: nothing there owns the address.
        owned = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout
        assert f'"{a.instance_address}"' not in owned
    finally:
        server.kill()
        server.wait(timeout=10)


def test_a_process_in_ivn_b_reaches_a_server_in_ivn_a(networks: IvnNetworks) -> None:
    a = networks.addresses("A")
    server = networks.run_in("A", [sys.executable, "-c", SERVER, a.instance_address, "7002"])
    try:
        wait_for_port(a.instance_address, 7002)
        client = subprocess.run(
            networks.command_in("B", [sys.executable, "-c", CLIENT, a.instance_address, "7002"]),
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert client.stdout.strip() == "hi", client.stderr
    finally:
        server.kill()
        server.wait(timeout=10)


def test_ivns_get_distinct_subnets_and_close_removes_everything() -> None:
    require_netns()
    ivns = IvnNetworks(["x", "y"], mode="netns").create()
    a, b = ivns.addresses("x"), ivns.addresses("y")
    assert a.subnet != b.subnet
    ivns.close()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    assert a.namespace not in names and b.namespace not in names
    assert f"{a.host_veth}@" not in links


def test_leftovers_of_a_dead_run_are_removed_and_live_runs_kept(networks: IvnNetworks) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = f"mt{dead.pid:x}g00-A"
    subprocess.run(["ip", "netns", "add", leftover], check=True)
    try:
        removed = cleanup_leftovers()
        assert leftover in removed
        assert networks.addresses("A").namespace not in removed  # ours: our pid is alive
    finally:
        subprocess.run(["ip", "netns", "del", leftover], capture_output=True)


def test_loopback_fallback_gives_each_ivn_its_own_loopback_address(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"), IvnNetworks(["A", "B"], mode="loopback") as ivns:
        assert ivns.addresses("A").instance_address == "127.0.1.1"
        assert ivns.addresses("B").instance_address == "127.0.2.1"
        assert ivns.command_in("B", ["true"]) == ["true"]
    assert "NOT isolated" in caplog.text


def test_bad_settings_and_unknown_ivns_are_named() -> None:
    with pytest.raises(ValueError, match="pool:"):
        IvnNetworks(["A"], pool="8.8.0.0/16")
    with pytest.raises(ValueError, match="ivns:"):
        IvnNetworks(["A", "A"])
    with IvnNetworks(["A"], mode="loopback") as ivns, pytest.raises(IvnError, match="unknown IVN 'Z'"):
        ivns.addresses("Z")


PARALLEL_RUN = """
import sys, time
from realworld.ivn import IvnNetworks
with IvnNetworks(["A", "B"], mode="netns") as ivns:
    print(" ".join(ivns.addresses(name).subnet for name in ("A", "B")), flush=True)
    time.sleep(1.0)
"""


def test_parallel_runs_never_share_a_subnet(networks: IvnNetworks) -> None:
    runs = [
        subprocess.Popen([sys.executable, "-c", PARALLEL_RUN], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        for _ in range(3)
    ]
    subnets = [subnet for run in runs for subnet in run.communicate(timeout=60)[0].split()]
    assert all(run.returncode == 0 for run in runs)
    ours = [networks.addresses("A").subnet, networks.addresses("B").subnet]
    assert len(subnets) == 6 and len(set(subnets + ours)) == 8
