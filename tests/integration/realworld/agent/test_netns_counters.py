"""Network rates come from the instance's network namespace: traffic over a veth we create is seen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from mirrortwin.config import load_settings
from realworld.agent.sampler import ProcessTreeSampler

# Sends ~4 MB of UDP to the host side of the veth over ~1.5 s, then idles (bounded in count and time).
SENDER = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "time.sleep(1.0)\n"
    "for _ in range(1000):\n"
    "    s.sendto(b'x' * 4000, (sys.argv[1], 9))\n"
    "    time.sleep(0.0015)\n"
    "time.sleep(20)\n"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if shutil.which("ip") is None:
        if load_settings().ci:
            pytest.fail("ip (iproute2) is missing; CI must have it")
        pytest.skip("ip (iproute2) not installed")
    tag = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"mt-agent-{tag}", f"mta{tag}", f"mtb{tag}"
    subnet = f"10.231.{int(tag[:2], 16)}"  # a /30 per run, so parallel runs do not collide
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.decode().strip()}")
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{subnet}.2/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        yield name, f"{subnet}.1"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@pytest.mark.slow
def test_tx_rate_of_a_process_in_its_own_netns(netns: tuple[str, str]) -> None:
    name, host_address = netns
    proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", SENDER, host_address])
    try:
        sampler = ProcessTreeSampler(proc.pid)
        time.sleep(0.5)  # ip exec()s into python; same pid
        sampler.sample()
        time.sleep(3.0)
        busy = sampler.sample()
        assert busy.net_tx_bps > 500_000  # ~4 MB over ~3 s (plus headers)
        time.sleep(1.0)
        idle = sampler.sample()
        assert idle.net_tx_bps < busy.net_tx_bps / 10
    finally:
        proc.kill()
        proc.wait()
