"""The Mirror Store's HTTP API (aiohttp) over :class:`~realworld.store.service.MirrorStoreService`.

Routes (all under ``/v1`` need ``Authorization: Bearer <token>``; errors are JSON
``{"error": ..., "field": ...}``)::

    POST   /v1/chunks/missing                      {"hashes": [...]} -> {"missing": [...]}
    POST   /v1/chunks                              frames (see frames.py) -> counts
    POST   /v1/instances/{instance_id}/snapshots   CommitRequest JSON -> 201 snapshot summary
    GET    /v1/instances/{instance_id}/snapshots   -> {"snapshots": [summary, ...]} newest first
    GET    /v1/instances/{instance_id}/latest      -> summary, 404 if none
    PUT    /v1/instances/{instance_id}/retention   Retention JSON -> applied now
    GET    /v1/snapshots/{snapshot_id}             -> full manifest
    GET    /v1/snapshots/{snapshot_id}/restore     -> stream of verified chunk frames, manifest order
    DELETE /v1/snapshots/{snapshot_id}             -> 204
    POST   /v1/gc                                  -> mark-and-sweep of the caller's namespace
    GET    /metrics                                Prometheus (no auth: counters only, no tenant data)
    GET    /healthz

Blocking work (hashing, decompressing, fsync) runs in worker threads so that one large upload does not
stall every other request's event loop turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from realworld.store.backend import BackendError
from realworld.store.service import MirrorStoreService, StoreError, summary_json
from realworld.store.tenants import Tenants

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_MB = 64
RESTORE_WRITE_BYTES = 4 * 1024 * 1024

SERVICE_KEY: web.AppKey[MirrorStoreService] = web.AppKey("service", MirrorStoreService)
TENANTS_KEY: web.AppKey[Tenants] = web.AppKey("tenants", Tenants)
MAX_BODY_KEY: web.AppKey[int] = web.AppKey("max_body_bytes", int)
GC_INTERVAL_KEY: web.AppKey[float | None] = web.AppKey("gc_interval_s")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_error(status: int, message: str, field: str = "") -> web.Response:
    return web.json_response({"error": message, "field": field}, status=status)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StoreError as exc:
        return web.json_response(exc.to_json(), status=exc.status)
    except web.HTTPRequestEntityTooLarge as exc:
        return _json_error(413, f"request body too large ({exc.text})", "body")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json_error(exc.status, exc.reason, "path" if exc.status == 404 else "")
    except BackendError as exc:
        log.error("storage failure on %s %s: %s", request.method, request.path, exc)
        return _json_error(507, f"storage failure: {exc}", "")
    except Exception:
        # A bug, not the caller's fault: log it here, answer one JSON line, keep serving.
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _json_error(500, "internal error (logged by the store)", "")


def _tenant(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise StoreError(401, "missing bearer token (Authorization: Bearer <token>)", "Authorization")
    tenant = request.app[TENANTS_KEY].authenticate(token.strip())
    if tenant is None:
        raise StoreError(401, "unknown token", "Authorization")
    return tenant


async def _read_body(request: web.Request) -> bytes:
    limit = request.app[MAX_BODY_KEY]
    if request.content_length is not None and request.content_length > limit:
        raise StoreError(413, f"request body of {request.content_length} bytes exceeds {limit} bytes", "body")
    return await request.read()


async def _read_json(request: web.Request) -> Any:
    body = await _read_body(request)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(400, f"request body is not valid JSON ({exc})", "body") from None


def _service(request: web.Request) -> MirrorStoreService:
    return request.app[SERVICE_KEY]


async def missing(request: web.Request) -> web.Response:
    """Which chunks of a batch the tenant's store lacks."""
    tenant = _tenant(request)
    data = await _read_json(request)
    if not isinstance(data, dict) or "hashes" not in data:
        raise StoreError(400, 'expected a JSON object {"hashes": [...]}', "hashes")
    result = await asyncio.to_thread(_service(request).missing_chunks, tenant, data["hashes"])
    return web.json_response({"missing": result})


async def upload_chunks(request: web.Request) -> web.Response:
    """Verify and store a batch of chunk frames."""
    tenant = _tenant(request)
    body = await _read_body(request)
    result = await asyncio.to_thread(_service(request).ingest_chunks, tenant, body)
    return web.json_response(
        {
            "received_chunks": result.received_chunks,
            "stored_chunks": result.stored_chunks,
            "deduplicated_chunks": result.deduplicated_chunks,
            "received_bytes": result.received_bytes,
        }
    )


async def commit(request: web.Request) -> web.Response:
    """Commit a snapshot manifest."""
    tenant = _tenant(request)
    data = await _read_json(request)
    manifest = await asyncio.to_thread(_service(request).commit, tenant, request.match_info["instance_id"], data)
    return web.Response(body=summary_json(manifest), status=201, content_type="application/json")


async def list_snapshots(request: web.Request) -> web.Response:
    """The instance's snapshots, newest first."""
    tenant = _tenant(request)
    found = await asyncio.to_thread(_service(request).list_snapshots, tenant, request.match_info["instance_id"])
    return web.json_response({"snapshots": [m.summary() for m in found]})


async def latest(request: web.Request) -> web.Response:
    """The instance's newest snapshot."""
    tenant = _tenant(request)
    found = await asyncio.to_thread(_service(request).latest, tenant, request.match_info["instance_id"])
    return web.json_response(found.summary())


async def set_retention(request: web.Request) -> web.Response:
    """Change an instance's retention at run time."""
    tenant = _tenant(request)
    data = await _read_json(request)
    retention = await asyncio.to_thread(
        _service(request).set_retention, tenant, request.match_info["instance_id"], data
    )
    return web.json_response(retention.model_dump())


async def get_manifest(request: web.Request) -> web.Response:
    """One snapshot's full manifest."""
    tenant = _tenant(request)
    manifest = await asyncio.to_thread(_service(request).get_manifest, tenant, request.match_info["snapshot_id"])
    return web.Response(body=manifest.model_dump_json().encode(), content_type="application/json")


async def delete_snapshot(request: web.Request) -> web.Response:
    """Delete one snapshot."""
    tenant = _tenant(request)
    await asyncio.to_thread(_service(request).delete_snapshot, tenant, request.match_info["snapshot_id"])
    return web.Response(status=204)


def _next_block(frames: Iterator[bytes]) -> bytes:
    parts: list[bytes] = []
    size = 0
    for frame in frames:
        parts.append(frame)
        size += len(frame)
        if size >= RESTORE_WRITE_BYTES:
            break
    return b"".join(parts)


async def restore(request: web.Request) -> web.StreamResponse:
    """Stream the snapshot's verified chunk frames in manifest order."""
    tenant = _tenant(request)
    service = _service(request)
    manifest = await asyncio.to_thread(service.get_manifest, tenant, request.match_info["snapshot_id"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    frames = service.restore_frames(tenant, manifest)
    while True:
        block = await asyncio.to_thread(_next_block, frames)
        if not block:
            break
        await response.write(block)
    await response.write_eof()
    return response


async def gc(request: web.Request) -> web.Response:
    """Mark and sweep the caller's namespace now."""
    tenant = _tenant(request)
    result = await asyncio.to_thread(_service(request).gc, tenant)
    return web.json_response(result.__dict__)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of the store's counters."""
    body = generate_latest(_service(request).metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    """Liveness for supervisors and tests."""
    return web.json_response({"ok": True})


async def _periodic_gc(app: web.Application) -> None:
    service = app[SERVICE_KEY]
    interval = app[GC_INTERVAL_KEY]
    if not interval:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            for tenant in await asyncio.to_thread(service.tenants_with_data):
                result = await asyncio.to_thread(service.gc, tenant)
                log.info("gc %s: %s", tenant, result)
        except Exception:
            # Keep collecting on the next tick; a failed sweep deletes nothing it should not.
            log.exception("periodic gc failed")


async def _gc_task(app: web.Application) -> Any:
    task = asyncio.create_task(_periodic_gc(app)) if app[GC_INTERVAL_KEY] else None
    yield
    if task is not None:
        task.cancel()


def build_app(
    service: MirrorStoreService,
    tenants: Tenants,
    *,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    gc_interval_s: float | None = None,
) -> web.Application:
    """The aiohttp application serving ``service`` to ``tenants``.

    Args:
        service: The store logic.
        tenants: Who may call, by token digest.
        max_body_mb: Largest request body accepted (413 above it); bounds memory per request.
        gc_interval_s: Run mark-and-sweep over every tenant this often (None: only on ``POST /v1/gc``).
    """
    max_body_bytes = int(max_body_mb * 1024 * 1024)
    app = web.Application(middlewares=[_errors_as_json], client_max_size=max_body_bytes)
    app[SERVICE_KEY] = service
    app[TENANTS_KEY] = tenants
    app[MAX_BODY_KEY] = max_body_bytes
    app[GC_INTERVAL_KEY] = gc_interval_s
    app.cleanup_ctx.append(_gc_task)
    app.router.add_post("/v1/chunks/missing", missing)
    app.router.add_post("/v1/chunks", upload_chunks)
    app.router.add_post("/v1/instances/{instance_id}/snapshots", commit)
    app.router.add_get("/v1/instances/{instance_id}/snapshots", list_snapshots)
    app.router.add_get("/v1/instances/{instance_id}/latest", latest)
    app.router.add_put("/v1/instances/{instance_id}/retention", set_retention)
    app.router.add_get("/v1/snapshots/{snapshot_id}", get_manifest)
    app.router.add_get("/v1/snapshots/{snapshot_id}/restore", restore)
    app.router.add_delete("/v1/snapshots/{snapshot_id}", delete_snapshot)
    app.router.add_post("/v1/gc", gc)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
