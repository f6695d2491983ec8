"""The agent's HTTP API on a real aiohttp server on a free loopback port, driven with httpx."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from realworld.agent.agent import MirroringAgent
from realworld.agent.http_api import AgentHttpServer, build_app, check_listen_address
from realworld.agent.uploader import Retention
from tests.fakes.fake_agent_parts import CountingCapture, SelfSampler
from tests.fakes.fake_snapshot_uploader import FakeSnapshotUploader

TOKEN = "s3cret-control-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Running:
    def __init__(self, agent: MirroringAgent, uploader: FakeSnapshotUploader, client: httpx.Client) -> None:
        self.agent, self.uploader, self.client = agent, uploader, client

    def state(self) -> tuple[Any, ...]:
        c = self.agent.counters()
        return (self.agent.interval_s, self.agent.retention, c.snapshots_ok, c.snapshots_failed, self.uploader.calls)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Running]:
    uploader = FakeSnapshotUploader()
    agent = MirroringAgent(
        "redis-a",
        sampler=SelfSampler(),
        capture=CountingCapture(),
        uploader=uploader,
        interval_s=600.0,
        retention=Retention(keep_last=5),
        work_dir=tmp_path,
    )
    for _ in range(3):
        agent.sample_once()
    server = AgentHttpServer(build_app(agent, TOKEN, max_body_bytes=1024), "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield Running(agent, uploader, client)
    finally:
        server.stop()
        agent.stop(timeout_s=5)


def test_metrics_exposition_parses_and_carries_samples_and_counters(api: Running) -> None:
    api.client.post("/v1/snapshots", headers=AUTH).raise_for_status()
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    inst = ("instance_id", "redis-a")
    assert values[("mirrortwin_instance_cpu_util", (inst,))] == 0.25
    assert values[("mirrortwin_instance_memory_bytes", (inst,))] == 1 << 20
    assert values[("mirrortwin_agent_snapshots_total", (inst, ("result", "ok")))] == 1
    assert values[("mirrortwin_agent_snapshots_total", (inst, ("result", "skipped")))] == 0
    assert values[("mirrortwin_agent_snapshot_bytes_total", (inst, ("kind", "logical")))] == len("redis-a 1")
    assert values[("mirrortwin_agent_snapshot_interval_seconds", (inst,))] == 600.0
    assert 0 <= values[("mirrortwin_agent_last_snapshot_age_seconds", (inst,))] < 3600
    assert values[("mirrortwin_agent_samples_total", (inst,))] == 3


def test_samples_since(api: Running) -> None:
    all_rows = api.client.get("/v1/samples", headers=AUTH).json()["samples"]
    assert [r["timestamp"] for r in all_rows] == [1.0, 2.0, 3.0]
    later = api.client.get("/v1/samples", params={"since": "1.5"}, headers=AUTH).json()
    assert later["instance_id"] == "redis-a"
    assert [r["timestamp"] for r in later["samples"]] == [2.0, 3.0]


def test_status_reports_configuration_and_last_snapshot(api: Running) -> None:
    before = api.client.get("/v1/status", headers=AUTH).json()
    assert before["last_snapshot"] is None
    assert before["retention"] == {"keep_last": 5, "max_age_s": None}
    info = api.client.post("/v1/snapshots", headers=AUTH).json()
    after = api.client.get("/v1/status", headers=AUTH).json()
    assert after["last_snapshot"] == info
    assert after["interval_s"] == 600.0 and after["capture"] == "fake"
    assert after["counters"]["snapshots_ok"] == 1


def test_interval_and_retention_change_at_run_time(api: Running) -> None:
    r = api.client.put("/v1/snapshot-interval", json={"interval_s": 30}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"interval_s": 30.0}
    assert api.agent.interval_s == 30.0
    r = api.client.put("/v1/retention", json={"keep_last": 2, "max_age_s": 3600}, headers=AUTH)
    assert r.status_code == 200
    assert api.agent.retention == Retention(keep_last=2, max_age_s=3600.0)
    api.client.post("/v1/snapshots", headers=AUTH).raise_for_status()
    assert api.uploader.uploads[-1].retention == Retention(keep_last=2, max_age_s=3600.0)


def test_post_snapshot_returns_the_committed_info(api: Running) -> None:
    r = api.client.post("/v1/snapshots", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["snapshot_id"] == "redis-a-1" and body["file_count"] == 1
    assert api.uploader.uploads[0].files == {"state.txt": b"redis-a 1"}


def test_failed_snapshot_is_a_clear_500(api: Running) -> None:
    api.uploader.fail_next = 1
    r = api.client.post("/v1/snapshots", headers=AUTH)
    assert r.status_code == 500
    assert "fake store unreachable" in r.json()["error"]


BAD_REQUESTS: list[tuple[str, str, str, dict[str, str], Any, int, str]] = [
    # (case, method, path, headers, body, status, words the error must contain)
    ("no token", "PUT", "/v1/snapshot-interval", {}, {"interval_s": 5}, 401, "missing bearer token"),
    ("wrong token", "PUT", "/v1/snapshot-interval", {"Authorization": "Bearer nope"}, {"interval_s": 5}, 401, "wrong"),
    ("basic auth", "POST", "/v1/snapshots", {"Authorization": f"Basic {TOKEN}"}, None, 401, "wrong"),
    ("no token status", "GET", "/v1/status", {}, None, 401, "bearer"),
    ("no token samples", "GET", "/v1/samples", {}, None, 401, "bearer"),
    ("malformed json", "PUT", "/v1/snapshot-interval", AUTH, b"{interval_s: 5", 400, "malformed JSON"),
    ("not an object", "PUT", "/v1/snapshot-interval", AUTH, b"[5]", 400, "JSON object"),
    ("not utf-8", "PUT", "/v1/retention", AUTH, b"\xff\xfe", 400, "malformed JSON"),
    ("negative interval", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": -5}, 422, "interval_s"),
    ("zero interval", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": 0}, 422, "interval_s"),
    ("nan interval", "PUT", "/v1/snapshot-interval", AUTH, b'{"interval_s": NaN}', 422, "interval_s"),
    ("inf interval", "PUT", "/v1/snapshot-interval", AUTH, b'{"interval_s": Infinity}', 422, "interval_s"),
    ("huge interval", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": 1e9}, 422, "interval_s"),
    ("string interval", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": "10"}, 422, "interval_s"),
    ("bool interval", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": True}, 422, "interval_s"),
    ("missing interval", "PUT", "/v1/snapshot-interval", AUTH, {}, 422, "interval_s: required"),
    ("unknown field", "PUT", "/v1/snapshot-interval", AUTH, {"interval_s": 5, "x": 1}, 422, "unknown field(s) x"),
    ("keep_last zero", "PUT", "/v1/retention", AUTH, {"keep_last": 0}, 422, "keep_last"),
    ("keep_last float", "PUT", "/v1/retention", AUTH, {"keep_last": 2.5}, 422, "keep_last"),
    ("max_age negative", "PUT", "/v1/retention", AUTH, {"max_age_s": -1}, 422, "max_age_s"),
    ("max_age nan", "PUT", "/v1/retention", AUTH, b'{"max_age_s": NaN}', 422, "max_age_s"),
    ("empty retention", "PUT", "/v1/retention", AUTH, {}, 422, "keep_last and/or max_age_s"),
    ("bad since", "GET", "/v1/samples?since=yesterday", AUTH, None, 422, "since"),
    ("nan since", "GET", "/v1/samples?since=nan", AUTH, None, 422, "since"),
    (
        "oversize body",
        "PUT",
        "/v1/snapshot-interval",
        AUTH,
        b'{"interval_s": 5, "pad": "' + b"x" * 4096 + b'"}',
        413,
        "limit",
    ),
    ("oversize post", "POST", "/v1/snapshots", AUTH, b"x" * 4096, 413, "limit"),
    ("unknown path", "GET", "/v1/nope", AUTH, None, 404, "no such endpoint: GET /v1/nope"),
    ("unknown path no token", "DELETE", "/admin", {}, None, 404, "no such endpoint"),
    ("wrong method", "DELETE", "/v1/status", AUTH, None, 405, "method DELETE not allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_are_refused_clearly_and_change_nothing(
    api: Running, method: str, path: str, headers: dict[str, str], body: Any, status: int, words: str
) -> None:
    before = api.state()
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"] = {**headers, "Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = api.client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["status"] == status
    assert words in payload["error"]
    assert api.state() == before


def test_chunked_oversize_body_is_refused(api: Running) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"interval_s": 5, "pad": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}'

    before = api.state()
    response = api.client.put("/v1/snapshot-interval", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert api.state() == before


def test_busy_agent_answers_409(api: Running) -> None:
    import threading

    release = threading.Event()
    api.uploader.release = release
    worker = threading.Thread(target=api.agent.snapshot_now)
    worker.start()
    try:
        assert api.uploader.entered.wait(10)
        r = api.client.post("/v1/snapshots", headers=AUTH)
        assert r.status_code == 409 and "already in flight" in r.json()["error"]
    finally:
        release.set()
        worker.join()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "localhost", "example.org"])
def test_wildcard_or_name_listen_addresses_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        check_listen_address(host)


def test_empty_token_is_refused(tmp_path: Path) -> None:
    agent = MirroringAgent("x", sampler=SelfSampler(), capture=CountingCapture(), uploader=FakeSnapshotUploader())
    with pytest.raises(ValueError, match="control token"):
        build_app(agent, "")
    assert not math.isnan(agent.interval_s)
