"""The agent's HTTP face: Prometheus ``/metrics`` and the JSON control API the live controller uses.

Endpoints (all JSON errors are ``{"error": "...", "status": N}``):

* ``GET /metrics`` — Prometheus text exposition; no token (scrapers sit on the same loopback or IVN).
* ``GET /v1/samples?since=T`` — samples strictly after epoch ``T`` (all kept ones without ``since``).
* ``GET /v1/status`` — instance, capture backend, interval, retention, last snapshot, counters.
* ``PUT /v1/snapshot-interval`` ``{"interval_s": x}`` — effective for the next snapshot.
* ``PUT /v1/retention`` ``{"keep_last": n|null, "max_age_s": s|null}`` — passed with the next uploads.
* ``POST /v1/snapshots`` — take one now; answers with its ``SnapshotInfo`` when committed.

Every ``/v1`` endpoint needs ``Authorization: Bearer <token>``. Checks run in this order and the first
that fails answers: unknown path 404 (405 for a known path with another method), token 401, body over
the limit 413, malformed JSON or not an object 400, a field missing, unknown, of the wrong type or out
of range 422 naming it. A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from realworld.agent.agent import MirroringAgent, SnapshotBusyError, SnapshotFailedError, check_interval
from realworld.agent.metrics import agent_registry
from realworld.agent.uploader import Retention

#: Largest request body accepted (bytes); control requests are a few dozen bytes.
MAX_BODY_BYTES = 16 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    """One clear JSON error."""
    response = web.json_response({"error": message, "status": status}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mirrortwin-agent"'
    return response


class RequestRefusedError(Exception):
    """A request the API refuses; carries the status and the one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_listen_address(host: str) -> str:
    """Return ``host`` if it is a concrete IP address (loopback or an IVN address), else raise ``ValueError``.

    Wildcards are refused: the agent must never listen on every interface of the host.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"listen address {host!r}: must be an IP address such as 127.0.0.1") from None
    if address.is_unspecified:
        raise ValueError(f"listen address {host!r}: wildcard addresses are refused; use 127.0.0.1 or an IVN address")
    return host


def build_app(agent: MirroringAgent, token: str, *, max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    """The aiohttp application of one agent, guarded by ``token``."""
    if not token:
        raise ValueError("control token: must not be empty")
    expected = f"Bearer {token}".encode()
    registry = agent_registry(agent)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        route_error = request.match_info.http_exception
        if route_error is not None:
            if route_error.status == 405:
                return json_error(405, f"method {request.method} not allowed on {request.path}")
            return json_error(route_error.status, f"no such endpoint: {request.method} {request.path}")
        if request.path.startswith("/v1/"):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                why = "missing" if not given else "wrong"
                return json_error(401, f"Authorization: {why} bearer token")
            if request.content_length is not None and request.content_length > max_body_bytes:
                return json_error(413, f"body: {request.content_length} bytes exceeds the {max_body_bytes}-byte limit")
        try:
            return await handler(request)
        except RequestRefusedError as exc:
            return json_error(exc.status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, f"body: exceeds the {max_body_bytes}-byte limit")

    async def read_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestRefusedError(400, f"body: malformed JSON ({exc})") from None
        if not isinstance(body, dict):
            raise RequestRefusedError(400, f"body: must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise RequestRefusedError(
                422, f"body: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return body

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def samples(request: web.Request) -> web.Response:
        since_text = request.query.get("since")
        since = -math.inf
        if since_text is not None:
            try:
                since = float(since_text)
            except ValueError:
                raise RequestRefusedError(422, f"since: must be an epoch time in seconds, got {since_text!r}") from None
            if math.isnan(since):
                raise RequestRefusedError(422, "since: must be an epoch time in seconds, got NaN")
        rows = [s.as_dict() for s in agent.samples.since(since)]
        return web.json_response({"instance_id": agent.instance_id, "samples": rows})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(status_document(agent))

    async def put_interval(request: web.Request) -> web.Response:
        body = await read_object(request, {"interval_s"})
        if "interval_s" not in body:
            raise RequestRefusedError(422, "interval_s: required")
        try:
            value = check_interval(body["interval_s"])
        except ValueError as exc:
            raise RequestRefusedError(422, str(exc)) from None
        agent.set_interval(value)
        return web.json_response({"interval_s": agent.interval_s})

    async def put_retention(request: web.Request) -> web.Response:
        body = await read_object(request, {"keep_last", "max_age_s"})
        if not body:
            raise RequestRefusedError(422, "body: give keep_last and/or max_age_s (null for no limit)")
        keep_last, max_age_s = body.get("keep_last"), body.get("max_age_s")
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)):
            raise RequestRefusedError(422, f"keep_last: must be an integer >= 1 or null, got {keep_last!r}")
        if max_age_s is not None and (isinstance(max_age_s, bool) or not isinstance(max_age_s, int | float)):
            raise RequestRefusedError(422, f"max_age_s: must be a number of seconds > 0 or null, got {max_age_s!r}")
        try:
            retention = Retention(keep_last=keep_last, max_age_s=None if max_age_s is None else float(max_age_s))
        except ValueError as exc:
            raise RequestRefusedError(422, str(exc)) from None
        agent.set_retention(retention)
        return web.json_response(retention_document(retention))

    async def post_snapshot(request: web.Request) -> web.Response:
        await request.read()  # enforce the body limit even though the body is unused
        loop = asyncio.get_running_loop()
        try:
            info = await loop.run_in_executor(None, agent.snapshot_now)
        except SnapshotBusyError as exc:
            raise RequestRefusedError(409, str(exc)) from None
        except SnapshotFailedError as exc:
            raise RequestRefusedError(500, f"snapshot failed: {exc}") from None
        return web.json_response(asdict(info))

    app = web.Application(middlewares=[guard], client_max_size=max_body_bytes)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/samples", samples)
    app.router.add_get("/v1/status", status)
    app.router.add_put("/v1/snapshot-interval", put_interval)
    app.router.add_put("/v1/retention", put_retention)
    app.router.add_post("/v1/snapshots", post_snapshot)
    return app


def retention_document(retention: Retention | None) -> dict[str, Any] | None:
    """Retention as JSON (``None`` when the store's default applies)."""
    return None if retention is None else {"keep_last": retention.keep_last, "max_age_s": retention.max_age_s}


def status_document(agent: MirroringAgent) -> dict[str, Any]:
    """What ``GET /v1/status`` answers."""
    c = agent.counters()
    counters = asdict(c)
    counters.pop("last_snapshot")
    return {
        "instance_id": agent.instance_id,
        "capture": agent.capture_name,
        "interval_s": agent.interval_s,
        "retention": retention_document(agent.retention),
        "next_snapshot_in_s": agent.next_due_in_s(),
        "in_flight": agent.busy,
        "last_snapshot": None if c.last_snapshot is None else asdict(c.last_snapshot),
        "counters": counters,
    }


class AgentHttpServer:
    """Serves :func:`build_app` on its own thread and event loop, next to the agent's threads."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app = app
        self._host = check_listen_address(host)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rma-http", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9100``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    def start(self) -> None:
        """Bind and start serving; raises ``OSError`` (e.g. port in use) from the calling thread."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._runner is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        if not self._loop.is_running():
            self._loop.close()
