"""``mirrortwin agent``: run a Resource Mirroring Agent sidecar for one instance.

Kept out of :mod:`mirrortwin.cli` (which only calls :func:`register`) so the sidecar's arguments, checks
and wiring live in one place. Every argument mistake ends as one ``mirrortwin: error: ...`` line and
exit status 2; an environment that cannot run the agent (no store client in this build, CRIU
unavailable, the listen port taken) as one line and status 1. Heavy imports wait until the arguments
are checked.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Instance ids become store keys and file names: a conservative alphabet keeps them safe everywhere.
INSTANCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ENVIRONMENT_EXIT = 1


class AgentEnvironmentError(Exception):
    """The machine cannot run the agent as asked (exit 1); ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class AgentConfig:
    """The checked command line of ``mirrortwin agent``."""

    instance_id: str
    pid: int | None
    cgroup: Path | None
    capture: str
    hook_cmd: str | None
    hook_outputs: tuple[Path, ...]
    hook_timeout_s: float
    state_dir: Path | None
    store_url: str
    store_token: str
    control_token: str
    interval_s: float
    keep_last: int | None
    max_age_s: float | None
    sample_interval_s: float
    cores: float | None
    memory_metric: str
    listen_host: str
    listen_port: int
    work_dir: Path | None


def register(commands: Any) -> None:
    """Add the ``agent`` sub-command to the ``mirrortwin`` sub-command set."""
    agent = commands.add_parser(
        "agent",
        help="run the Resource Mirroring Agent sidecar of one instance (sampling, snapshots, metrics, control API)",
    )
    agent.add_argument("--instance-id", required=True, metavar="ID", help="the instance mirrored (store key)")
    which = agent.add_mutually_exclusive_group(required=True)
    which.add_argument("--pid", type=int, metavar="PID", help="root pid of the instance's process tree")
    which.add_argument("--cgroup", type=Path, metavar="DIR", help="the instance's cgroup v2 directory")
    agent.add_argument("--capture", required=True, choices=("hook", "dir", "criu"), help="capture backend")
    agent.add_argument("--hook-cmd", metavar="CMD", help="hook: dump command ({out}, {instance_id}, {pid} replaced)")
    agent.add_argument(
        "--hook-output", action="append", default=[], type=Path, metavar="PATH", help="hook: file/dir it leaves"
    )
    agent.add_argument("--hook-timeout-s", type=float, default=60.0, metavar="S", help="hook: time limit (default 60)")
    agent.add_argument("--state-dir", type=Path, metavar="DIR", help="dir: the instance's state directory")
    agent.add_argument("--store-url", required=True, metavar="URL", help="Mirror Store base URL")
    agent.add_argument("--store-token-file", required=True, type=Path, metavar="F", help="file holding the store token")
    agent.add_argument(
        "--control-token-file", required=True, type=Path, metavar="F", help="file holding the control API token"
    )
    agent.add_argument("--interval-s", type=float, default=60.0, metavar="S", help="snapshot interval (default 60)")
    agent.add_argument("--keep-last", type=int, metavar="N", help="retention: snapshots the store keeps")
    agent.add_argument("--max-age-s", type=float, metavar="S", help="retention: oldest snapshot age kept")
    agent.add_argument(
        "--sample-interval-s", type=float, default=1.0, metavar="S", help="sampling interval (default 1)"
    )
    agent.add_argument(
        "--memory",
        choices=("rss", "pss"),
        default="rss",
        help="--pid memory measure: rss (cheap) or pss (shared pages split fairly; reads smaps_rollup)",
    )
    agent.add_argument("--cores", type=float, metavar="N", help="cores allotted to the instance (cpu_util denominator)")
    agent.add_argument("--listen", default="127.0.0.1:9100", metavar="HOST:PORT", help="metrics and control API")
    agent.add_argument("--work-dir", type=Path, metavar="DIR", help="where captures are staged (default: temp)")
    agent.set_defaults(func=cmd_agent)


def _usage(message: str) -> Exception:
    from mirrortwin.cli import UsageError

    return UsageError(message)


def _read_token(path: Path, flag: str) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise _usage(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _usage(f"{flag} {path}: not a text file") from None
    if not token or any(c.isspace() for c in token):
        raise _usage(f"{flag} {path}: must hold one token (non-empty, no spaces)")
    return token


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise _usage(f"{flag}: must be a finite number > 0, got {value}")


def parse_agent_args(args: argparse.Namespace) -> AgentConfig:
    """Check the parsed arguments together; raises ``UsageError`` naming the first wrong flag."""
    from realworld.agent.agent import check_interval
    from realworld.agent.http_api import check_listen_address

    if not INSTANCE_ID_PATTERN.match(args.instance_id):
        raise _usage(f"--instance-id {args.instance_id!r}: use 1-128 letters, digits, '.', '_' or '-'")
    if args.pid is not None and args.pid <= 0:
        raise _usage(f"--pid {args.pid}: must be a positive process id")
    if args.capture == "hook" and not args.hook_cmd:
        raise _usage("--capture hook needs --hook-cmd CMD (and --hook-output PATH unless CMD writes into {out})")
    if args.capture != "hook" and (args.hook_cmd or args.hook_output):
        raise _usage(f"--hook-cmd/--hook-output only apply to --capture hook, not {args.capture}")
    if args.capture == "dir" and args.state_dir is None:
        raise _usage("--capture dir needs --state-dir DIR")
    if args.capture != "dir" and args.state_dir is not None:
        raise _usage(f"--state-dir only applies to --capture dir, not {args.capture}")
    if args.memory != "rss" and args.pid is None:
        raise _usage("--memory pss applies to --pid; a cgroup reports memory.current")
    if args.capture == "criu" and args.pid is None:
        raise _usage("--capture criu needs --pid (CRIU dumps a process tree, not a cgroup)")
    try:
        interval_s = check_interval(args.interval_s, name="--interval-s")
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if args.keep_last is not None and args.keep_last < 1:
        raise _usage(f"--keep-last: must be >= 1, got {args.keep_last}")
    for value, flag in (
        (args.max_age_s, "--max-age-s"),
        (args.sample_interval_s, "--sample-interval-s"),
        (args.cores, "--cores"),
        (args.hook_timeout_s, "--hook-timeout-s"),
    ):
        _positive(value, flag)
    if not args.store_url.startswith(("http://", "https://")):
        raise _usage(f"--store-url {args.store_url!r}: must be an http:// or https:// URL")
    host, sep, port_text = args.listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise _usage(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    try:
        check_listen_address(host)
    except ValueError as exc:
        raise _usage(f"--listen: {exc}") from None
    return AgentConfig(
        instance_id=args.instance_id,
        pid=args.pid,
        cgroup=args.cgroup,
        capture=args.capture,
        hook_cmd=args.hook_cmd,
        hook_outputs=tuple(args.hook_output),
        hook_timeout_s=args.hook_timeout_s,
        state_dir=args.state_dir,
        store_url=args.store_url,
        store_token=_read_token(args.store_token_file, "--store-token-file"),
        control_token=_read_token(args.control_token_file, "--control-token-file"),
        interval_s=interval_s,
        keep_last=args.keep_last,
        max_age_s=args.max_age_s,
        sample_interval_s=args.sample_interval_s,
        cores=args.cores,
        memory_metric=args.memory,
        listen_host=host,
        listen_port=int(port_text),
        work_dir=args.work_dir,
    )


def build_agent(config: AgentConfig, make_uploader: Callable[[AgentConfig], Any]) -> Any:
    """Sampler + capture backend + uploader -> a :class:`~realworld.agent.agent.MirroringAgent`.

    The uploader is made last, so mistakes in the instance or capture arguments are reported first.
    """
    from realworld.agent.agent import MirroringAgent
    from realworld.agent.capture import (
        CaptureBackend,
        CaptureError,
        CaptureUnavailableError,
        CriuCapture,
        DirCapture,
        HookCapture,
    )
    from realworld.agent.sampler import CgroupSampler, InstanceGoneError, ProcessTreeSampler, Sampler
    from realworld.agent.uploader import Retention

    try:
        sampler: Sampler = (
            ProcessTreeSampler(
                config.pid, cores=config.cores, memory_metric="pss" if config.memory_metric == "pss" else "rss"
            )
            if config.pid is not None
            else CgroupSampler(config.cgroup or Path(), cores=config.cores)
        )
    except InstanceGoneError as exc:
        raise _usage(str(exc)) from None
    try:
        capture: CaptureBackend
        if config.capture == "hook":
            capture = HookCapture(config.hook_cmd or "", config.hook_outputs, timeout_s=config.hook_timeout_s)
        elif config.capture == "dir":
            capture = DirCapture(config.state_dir or Path())
        else:
            capture = CriuCapture()
    except CaptureUnavailableError as exc:
        raise AgentEnvironmentError(str(exc)) from None
    except CaptureError as exc:
        raise _usage(str(exc)) from None
    retention = None
    if config.keep_last is not None or config.max_age_s is not None:
        retention = Retention(keep_last=config.keep_last, max_age_s=config.max_age_s)
    return MirroringAgent(
        config.instance_id,
        sampler=sampler,
        capture=capture,
        uploader=make_uploader(config),
        interval_s=config.interval_s,
        retention=retention,
        sample_interval_s=config.sample_interval_s,
        work_dir=config.work_dir,
        root_pid=config.pid,
    )


def store_uploader(config: AgentConfig) -> Any:
    """The Mirror Store client the agent uploads through (imported here: ``--help`` must stay light)."""
    from realworld.store.client import MirrorStoreClient

    return MirrorStoreClient(config.store_url, token=config.store_token)


def run_agent(
    config: AgentConfig,
    make_uploader: Callable[[AgentConfig], Any],
    stop: threading.Event,
    *,
    ready: Callable[[str], None] | None = None,
) -> int:
    """Run the agent and its HTTP API until ``stop`` is set; returns the exit status.

    Args:
        config: The checked command line.
        make_uploader: Makes where snapshots go (the store client, or a fake in tests).
        stop: Set to shut down (the CLI sets it on SIGINT/SIGTERM).
        ready: Called with the HTTP server's base URL once it serves (tests use it).
    """
    from realworld.agent.http_api import AgentHttpServer, build_app

    agent = build_agent(config, make_uploader)
    server = AgentHttpServer(build_app(agent, config.control_token), config.listen_host, config.listen_port)
    try:
        server.start()
    except OSError as exc:
        raise AgentEnvironmentError(
            f"--listen {config.listen_host}:{config.listen_port}: {exc.strerror or exc}"
        ) from None
    agent.start(first_snapshot_now=True)
    logging.getLogger(__name__).info(
        "agent for %s: capture %s, every %g s; metrics and control API on %s",
        config.instance_id,
        config.capture,
        config.interval_s,
        server.url,
    )
    if ready is not None:
        ready(server.url)
    try:
        stop.wait()
    finally:
        server.stop()
        agent.stop()
    return 0


def cmd_agent(args: argparse.Namespace, settings: Any) -> int:
    """``mirrortwin agent``: check the arguments, connect the store client, serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per snapshot, not one per chunk request
    config = parse_agent_args(args)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    try:
        return run_agent(config, store_uploader, stop)
    except AgentEnvironmentError as exc:
        print(f"mirrortwin: error: {exc}", file=sys.stderr)
        return ENVIRONMENT_EXIT
