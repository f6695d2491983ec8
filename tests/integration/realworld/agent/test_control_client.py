"""The controller-side client against a real agent HTTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from realworld.agent.agent import MirroringAgent
from realworld.agent.control_client import AgentControlClient, AgentControlError
from realworld.agent.http_api import AgentHttpServer, build_app
from realworld.agent.uploader import Retention
from tests.fakes.fake_agent_parts import CountingCapture, SelfSampler
from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[MirroringAgent, FakeSnapshotUploader, str]]:
    uploader = FakeSnapshotUploader()
    agent = MirroringAgent(
        "web-1", sampler=SelfSampler(), capture=CountingCapture(), uploader=uploader, interval_s=60, work_dir=tmp_path
    )
    agent.sample_once()
    agent.sample_once()
    server = AgentHttpServer(build_app(agent, "tok"), "127.0.0.1", 0)
    server.start()
    try:
        yield agent, uploader, server.url
    finally:
        server.stop()
        agent.stop(timeout_s=5)


def test_client_drives_every_endpoint(served) -> None:
    agent, uploader, url = served
    with AgentControlClient(url, "tok") as client:
        assert [s.timestamp for s in client.samples()] == [1.0, 2.0]
        assert [s.timestamp for s in client.samples(since=1.0)] == [2.0]
        assert client.set_interval(15) == 15.0 and agent.interval_s == 15.0
        client.set_retention(Retention(keep_last=3))
        info = client.snapshot_now()
        assert info.snapshot_id == "web-1-1" and info.file_list[0] == "state.txt"
        assert uploader.uploads[0].retention == Retention(keep_last=3)
        assert client.status()["last_snapshot"]["snapshot_id"] == "web-1-1"


def test_refusals_and_unreachable_agent_are_one_clear_error(served) -> None:
    _agent, _uploader, url = served
    with AgentControlClient(url, "tok") as client, pytest.raises(AgentControlError, match="422 interval_s") as err:
        client.set_interval(-1)
    assert err.value.status == 422
    with AgentControlClient(url, "wrong") as client, pytest.raises(AgentControlError, match="401") as err:
        client.status()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with AgentControlClient(dead, "tok", timeout_s=2) as client, pytest.raises(AgentControlError, match="ConnectError"):
        client.status()
