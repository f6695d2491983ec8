"""``mirrortwin store ...``: run a Mirror Store service, and the token-digest helper for its tenants file.

Kept out of :mod:`mirrortwin.cli` so the store's dependencies (aiohttp, zstandard, blake3, fastcdc) load
only when a store command runs. Startup problems (bad tenants file, port in use, unwritable root) are
the operator's to fix: one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from typing import Any

STARTUP_ERROR_EXIT = 2


class StoreStartupError(Exception):
    """The store cannot start; the message is one complete line for the operator."""


def register(commands: Any) -> None:
    """Add the ``store`` command group to the CLI's subparsers object."""
    store = commands.add_parser("store", help="the live Mirror Store service")
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve a Mirror Store over HTTP")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", type=Path, metavar="DIR", help="keep chunks and manifests in this local folder")
    where.add_argument(
        "--backend",
        metavar="URL",
        help="keep them in an S3-compatible bucket: s3://bucket[/prefix][?endpoint=URL&region=NAME] "
        "(credentials from the environment, e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    )
    serve.add_argument(
        "--tenants", type=Path, required=True, metavar="FILE.toml", help="tenants and their token SHA-256 digests"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8700, help="port to bind (default: 8700; 0 picks a free one)")
    serve.add_argument("--max-body-mb", type=float, default=64.0, metavar="M", help="largest request body (MiB)")
    serve.add_argument(
        "--gc-interval-s",
        type=float,
        default=600.0,
        metavar="S",
        help="run mark-and-sweep over every tenant this often; 0 turns it off (default: 600)",
    )
    serve.add_argument(
        "--lease-s", type=float, default=None, metavar="S", help="pending-upload lease protecting chunks from GC"
    )
    serve.set_defaults(func=cmd_store_serve)
    digest = actions.add_parser("token-digest", help="print the SHA-256 digest of a token for the tenants file")
    digest.add_argument("token", help="the clear-text token")
    digest.set_defaults(func=cmd_store_token_digest)


def cmd_store_token_digest(args: argparse.Namespace, settings: object) -> int:
    """Print the digest to put in the tenants file."""
    from realworld.store.tenants import token_digest

    print(token_digest(args.token))
    return 0


def cmd_store_serve(args: argparse.Namespace, settings: object) -> int:
    """``mirrortwin store serve``: run until interrupted."""
    try:
        runner_parts = _prepare(args)
    except StoreStartupError as exc:
        print(f"mirrortwin store serve: {exc}", file=sys.stderr)
        return STARTUP_ERROR_EXIT
    import logging

    from aiohttp import web

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app, sock = runner_parts
    host, port = sock.getsockname()[:2]
    print(f"mirror store serving {args.root or args.backend} on http://{host}:{port}", flush=True)
    web.run_app(app, sock=sock, print=None, handle_signals=True, access_log=None)
    return 0


def _s3_backend(url: str) -> Any:
    """An S3 backend from ``--backend``, checked by one round trip so a wrong bucket fails at start-up."""
    from realworld.store.backend import BackendError
    from realworld.store.s3_backend import S3Backend

    try:
        backend = S3Backend.from_url(url)
        next(iter(backend.list("manifests/")), None)
    except ValueError as exc:
        raise StoreStartupError(f"--backend: {exc}") from None
    except BackendError as exc:
        raise StoreStartupError(f"--backend {url}: not usable ({exc})") from None
    return backend


def _prepare(args: argparse.Namespace) -> tuple[Any, socket.socket]:
    from realworld.store.backend import BackendError
    from realworld.store.fs_backend import FileSystemBackend
    from realworld.store.http_server import build_app
    from realworld.store.service import DEFAULT_LEASE_S, MirrorStoreService
    from realworld.store.tenants import Tenants, TenantsFileError

    if args.gc_interval_s < 0:
        raise StoreStartupError(f"--gc-interval-s {args.gc_interval_s}: must be >= 0 (0 turns periodic GC off)")
    if args.lease_s is not None and args.lease_s <= 0:
        raise StoreStartupError(f"--lease-s {args.lease_s}: must be positive")
    if args.max_body_mb <= 0:
        raise StoreStartupError(f"--max-body-mb {args.max_body_mb}: must be positive")
    if not 0 <= args.port <= 65535:
        raise StoreStartupError(f"--port {args.port}: must be 0..65535")
    try:
        tenants = Tenants.load(args.tenants)
    except TenantsFileError as exc:
        raise StoreStartupError(str(exc)) from None
    backend: Any
    if args.backend is not None:
        backend = _s3_backend(args.backend)
    else:
        try:
            backend = FileSystemBackend(args.root)
            probe = args.root / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
            backend.remove_stale_temporaries()
        except (BackendError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise StoreStartupError(f"--root {args.root}: not writable ({reason})") from None
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((args.host, args.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = "port already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise StoreStartupError(f"--host {args.host} --port {args.port}: cannot listen ({why})") from None
    lease_s = args.lease_s if args.lease_s is not None else DEFAULT_LEASE_S
    service = MirrorStoreService(backend, lease_s=lease_s)
    app = build_app(service, tenants, max_body_mb=args.max_body_mb, gc_interval_s=args.gc_interval_s or None)
    return app, sock
