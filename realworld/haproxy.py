"""The live ``LoadBalancer`` port: a real HAProxy 2.6 driven through its runtime API.

Why HAProxy and its runtime API: weights, drain, maintenance, dynamic servers (``add server`` /
``del server``) and active health checks can all be changed on a running process without a reload, so a
traffic shift never drops a connection. Each fronted instance is one ``listen`` section (a frontend and a
backend in one); its first server is the instance itself, replacements are added at run time.

Names: HAProxy only accepts ``[A-Za-z0-9_.:-]`` in proxy and server names, while instance and replacement
ids contain ``@`` and ``#`` (``redis-a@B#1``). Names are therefore derived deterministically from the ids
(:func:`haproxy_name`), so an attached load balancer finds the same servers again.

Weights: HAProxy weights are integers 0..256; :func:`integer_weights` turns a split into integers that
sum to exactly 256 with every positive fraction keeping at least 1. A weight of 0 sends no *new*
connections (tcp mode) or requests (http mode: every request is balanced on its own) to a server;
established tcp connections stay on their server until they close, which is why :meth:`redirect` ends
with ``shutdown sessions server`` on the old one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from realworld.operations import FutureOperation, OperationRunner

logger = logging.getLogger(__name__)

HAPROXY_BIN = "/usr/sbin/haproxy"
WEIGHT_TOTAL = 256
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

RedirectHook = Callable[[str, str, Callable[[], None]], None]
"""``hook(instance_id, replacement_id, switch)``: called by :meth:`HAProxyLoadBalancer.redirect`.

The hook must call ``switch()`` exactly once, at the moment traffic may move (for a stateful app: after
pausing writes on the source and promoting the replica)."""


class LoadBalancerError(RuntimeError):
    """HAProxy refused or failed a request; the message names the runtime command or the setting."""


def haproxy_name(prefix: str, identifier: str) -> str:
    """Return a valid HAProxy proxy/server name for ``identifier``, stable across processes.

    The readable part keeps ids recognisable in ``show stat``; the hash keeps two ids that differ only
    in unsafe characters (``a@b`` and ``a#b``) apart.
    """
    digest = hashlib.blake2b(identifier.encode(), digest_size=4).hexdigest()
    return f"{prefix}{_NAME_UNSAFE.sub('_', identifier)[:48]}-{digest}"


def integer_weights(fractions: Mapping[str, float], total: int = WEIGHT_TOTAL) -> dict[str, int]:
    """Map a traffic split to HAProxy integer weights that sum to exactly ``total``.

    Largest-remainder rounding keeps each weight within 1 of its exact share; a positive fraction never
    rounds to 0 (that would silently take a backend out of rotation), the excess is taken from the largest.

    Raises:
        ValueError: When a fraction is negative or not finite, or the fractions do not sum to 1.
    """
    for backend, fraction in fractions.items():
        if not math.isfinite(fraction) or fraction < 0:
            raise ValueError(f"weights[{backend!r}]: must be a finite fraction >= 0, got {fraction!r}")
    sum_fractions = math.fsum(fractions.values())
    if not math.isclose(sum_fractions, 1.0, abs_tol=1e-6):
        raise ValueError(f"weights: fractions must sum to 1, got {sum_fractions!r} for {dict(fractions)!r}")
    exact = {backend: fraction / sum_fractions * total for backend, fraction in fractions.items()}
    result = {backend: math.floor(share) for backend, share in exact.items()}
    by_remainder = sorted(exact, key=lambda backend: exact[backend] - result[backend], reverse=True)
    for backend in by_remainder[: total - sum(result.values())]:
        result[backend] += 1
    for backend, fraction in fractions.items():
        if fraction > 0 and result[backend] == 0:
            largest = max(result, key=lambda name: result[name])
            result[largest] -= 1
            result[backend] = 1
    return result


HealthKind = Literal["tcp", "http", "redis"]


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """How HAProxy actively checks a service's servers: a tcp connect, an HTTP GET, or a Redis PING."""

    kind: HealthKind
    path: str = "/"

    @classmethod
    def parse(cls, text: str) -> HealthSpec:
        """Parse ``"tcp"``, ``"http:/path"`` or ``"redis"``.

        Raises:
            ValueError: Naming the ``health`` field when the text is none of these.
        """
        if text in ("tcp", "redis"):
            return cls(text)  # type: ignore[arg-type]
        if text.startswith("http:/") and " " not in text:
            return cls("http", text.removeprefix("http:"))
        raise ValueError(f"health: expected 'tcp', 'http:/path' or 'redis', got {text!r}")

    def config_lines(self) -> list[str]:
        """Backend lines that select the check type."""
        if self.kind == "http":
            return [f"option httpchk GET {self.path}"]
        if self.kind == "redis":
            return ["option redis-check"]
        return []


ServerAdmin = Literal["ready", "drain", "maint"]


@dataclass(slots=True)
class ServerState:
    """What this adapter last told HAProxy about one server (used to rewrite the config on reload)."""

    backend_id: str
    name: str
    address: str
    port: int
    weight: int
    admin: ServerAdmin = "ready"


@dataclass(slots=True)
class Service:
    """One fronted instance: a ``listen`` section and its servers."""

    instance_id: str
    proxy: str
    bind_address: str
    bind_port: int
    mode: Literal["tcp", "http"]
    health: HealthSpec
    servers: dict[str, ServerState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckTiming:
    """Active health-check timing for every server (HAProxy's ``inter``/``rise``/``fall``).

    Why short defaults: a migration step's health verdict waits for these; 200 ms checks give a
    definitive verdict in about a second on loopback and veth links.
    """

    inter_ms: int = 200
    rise: int = 2
    fall: int = 2

    def server_options(self) -> str:
        """Options appended to every server line and ``add server`` command."""
        return f"check inter {self.inter_ms}ms rise {self.rise} fall {self.fall}"


class HAProxyLoadBalancer:
    """Implements :class:`policies.ports.LoadBalancer` over a real HAProxy.

    Build it with :meth:`start` (writes a config, runs HAProxy in master-worker mode as a child) or
    :meth:`attach` (an HAProxy someone else runs, reachable through an admin-level stats socket).

    Args:
        socket_path: The admin-level stats socket (``stats socket ... level admin``).
        redirect_hook: Called by :meth:`redirect` with the switch function; ``None`` switches directly.
        checks: Health-check timing used for servers this adapter adds.
        health_timeout_s: How long :meth:`check_health` waits for a definitive verdict before answering
            False (with the reason on the operation's ``reason``).
        runner: Thread pool for health-check operations; one is created (and closed) when not given.
    """

    def __init__(
        self,
        socket_path: Path,
        *,
        redirect_hook: RedirectHook | None = None,
        checks: CheckTiming | None = None,
        health_timeout_s: float = 15.0,
        runner: OperationRunner | None = None,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.redirect_hook = redirect_hook
        self.checks = checks or CheckTiming()
        self.health_timeout_s = health_timeout_s
        self._own_runner = runner is None
        self._runner = runner or OperationRunner(max_workers=4, name="haproxy-health")
        self._lock = threading.RLock()
        self._services: dict[str, Service] = {}  # by proxy name
        self._service_of_backend: dict[str, str] = {}  # backend id -> proxy name
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._files: list[Path] = []
        self._workdir_created = False
        self._haproxy_bin = HAPROXY_BIN
        self._stats_port = 0
        self.stats_url: str | None = None

    # ----------------------------------------------------------------------------------- life cycle

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        services: list[ServiceSpec] | None = None,
        stats_port: int | None = None,
        haproxy_bin: str = HAPROXY_BIN,
        redirect_hook: RedirectHook | None = None,
        checks: CheckTiming | None = None,
        health_timeout_s: float = 15.0,
        runner: OperationRunner | None = None,
        ready_timeout_s: float = 10.0,
    ) -> HAProxyLoadBalancer:
        """Write a config into ``workdir``, start HAProxy and wait until its runtime API answers.

        Args:
            workdir: Folder for the config, pid file, sockets and log (created if missing).
            services: Services to front from the start (more can be added with :meth:`add_service`).
            stats_port: Port of the human stats page on 127.0.0.1; a free one when ``None``.
            haproxy_bin: The HAProxy executable.
            redirect_hook: See the class.
            checks: See the class.
            health_timeout_s: See the class.
            runner: See the class.
            ready_timeout_s: How long to wait for HAProxy to come up.

        Raises:
            LoadBalancerError: When the binary is missing, the config is refused or HAProxy does not
                come up; the message carries HAProxy's own words.
        """
        if not Path(haproxy_bin).exists():
            raise LoadBalancerError(f"haproxy_bin: {haproxy_bin} does not exist (install the haproxy package)")
        workdir = Path(workdir).absolute()
        if len(str(workdir / "master.sock")) > 100:  # unix socket paths are limited to 108 bytes
            raise LoadBalancerError(f"workdir: {workdir} is too long for HAProxy's unix sockets (keep it < 90 chars)")
        created = not workdir.exists()
        workdir.mkdir(parents=True, exist_ok=True)
        lb = cls(
            workdir / "admin.sock",
            redirect_hook=redirect_hook,
            checks=checks,
            health_timeout_s=health_timeout_s,
            runner=runner,
        )
        lb._workdir = workdir
        lb._workdir_created = created
        lb._haproxy_bin = haproxy_bin
        lb._stats_port = stats_port or free_tcp_port("127.0.0.1")
        lb.stats_url = f"http://127.0.0.1:{lb._stats_port}/"
        try:
            for spec in services or []:
                lb._remember_service(spec)
            lb._write_config()
            lb._launch(ready_timeout_s)
        except BaseException:
            lb.close()
            raise
        return lb

    @classmethod
    def attach(
        cls,
        socket_path: Path,
        *,
        redirect_hook: RedirectHook | None = None,
        checks: CheckTiming | None = None,
        health_timeout_s: float = 15.0,
        runner: OperationRunner | None = None,
    ) -> HAProxyLoadBalancer:
        """Use an HAProxy started elsewhere; servers are found by their derived names (:func:`haproxy_name`).

        Raises:
            LoadBalancerError: When the socket does not answer ``show info``.
        """
        lb = cls(
            socket_path, redirect_hook=redirect_hook, checks=checks, health_timeout_s=health_timeout_s, runner=runner
        )
        lb.command("show info", ok=())
        return lb

    def adopt_service(self, instance_id: str, backend_ids: list[str]) -> None:
        """Take over control of ``instance_id``'s service in an attached HAProxy.

        Names are one-way derivations of ids, so the caller says which backend ids to expect; each must
        exist as a server of the instance's proxy. Address, port, weight and state are read from HAProxy.

        Raises:
            LoadBalancerError: When the proxy or one of the servers is not in HAProxy.
        """
        proxy = haproxy_name("svc_", instance_id)
        rows = {row["svname"]: row for row in self._stat_rows() if row["pxname"] == proxy}
        if not rows:
            raise LoadBalancerError(f"adopt_service: HAProxy has no proxy {proxy} for instance {instance_id!r}")
        service = Service(instance_id, proxy, "", 0, "tcp", HealthSpec("tcp"))
        for backend_id in backend_ids:
            name = haproxy_name("s_", backend_id)
            row = rows.get(name)
            if row is None:
                raise LoadBalancerError(f"adopt_service: no server {proxy}/{name} for backend {backend_id!r}")
            address, _, port = row["addr"].rpartition(":")
            status = row["status"].split()[0]
            admin: ServerAdmin = "maint" if status == "MAINT" else "drain" if status == "DRAIN" else "ready"
            service.servers[backend_id] = ServerState(
                backend_id, name, address, int(port or 0), int(row["weight"] or 0), admin
            )
        with self._lock:
            self._services[proxy] = service
            for backend_id in backend_ids:
                self._service_of_backend[backend_id] = proxy
            self._service_of_backend.setdefault(instance_id, proxy)

    def _launch(self, ready_timeout_s: float) -> None:
        assert self._workdir is not None
        config = self._workdir / "haproxy.cfg"
        check = subprocess.run(
            [self._haproxy_bin, "-c", "-q", "-f", str(config)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise LoadBalancerError(f"HAProxy refused config {config}: {(check.stderr or check.stdout).strip()}")
        log_path = self._workdir / "haproxy.log"
        self._files.append(log_path)
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    self._haproxy_bin,
                    "-W",
                    "-f",
                    str(config),
                    "-p",
                    str(self._workdir / "haproxy.pid"),
                    "-S",
                    str(self._workdir / "master.sock"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._files += [self._workdir / name for name in ("haproxy.pid", "master.sock", "admin.sock")]
        self._wait_ready(ready_timeout_s, lambda: True)

    def _wait_ready(self, timeout_s: float, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LoadBalancerError(f"HAProxy exited with status {self._process.returncode}: {self._log_tail()}")
            try:
                self.command("show info", ok=())
                if condition():
                    return
                last_error = "new configuration not loaded yet"
            except (LoadBalancerError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.05)
        raise LoadBalancerError(f"HAProxy did not come up within {timeout_s:g} s ({last_error}): {self._log_tail()}")

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        log = self._workdir / "haproxy.log"
        return log.read_text(errors="replace")[-2000:].strip() if log.exists() else ""

    def close(self) -> None:
        """Stop HAProxy (when this adapter started it), the health threads, and remove the files written."""
        if self._own_runner:
            self._runner.close(wait=False)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
        if self._workdir is not None and self._workdir_created:
            with contextlib.suppress(OSError):
                self._workdir.rmdir()

    def __enter__(self) -> HAProxyLoadBalancer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- config

    def _remember_service(self, spec: ServiceSpec) -> Service:
        proxy = haproxy_name("svc_", spec.instance_id)
        with self._lock:
            if proxy in self._services:
                raise LoadBalancerError(f"add_service: instance {spec.instance_id!r} is already fronted")
            if spec.backend_id in self._service_of_backend:
                raise LoadBalancerError(f"add_service: backend {spec.backend_id!r} already belongs to a service")
            service = Service(
                spec.instance_id, proxy, spec.bind_address, spec.bind_port, spec.mode, HealthSpec.parse(spec.health)
            )
            service.servers[spec.backend_id] = ServerState(
                spec.backend_id,
                haproxy_name("s_", spec.backend_id),
                spec.server_address,
                spec.server_port,
                WEIGHT_TOTAL,
            )
            self._services[proxy] = service
            self._service_of_backend[spec.backend_id] = proxy
            self._service_of_backend.setdefault(spec.instance_id, proxy)
        return service

    def _write_config(self) -> None:
        assert self._workdir is not None
        lines = [
            "global",
            f"    stats socket {self._workdir / 'admin.sock'} mode 600 level admin expose-fd listeners",
            "    stats timeout 30s",
            # After a reload the old worker keeps its connections, out of reach of the runtime API (which
            # talks to the new worker); bound how long such connections may live on old weights.
            "    hard-stop-after 30s",
            "",
            "defaults",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            f"    timeout check {max(self.checks.inter_ms, 100)}ms",
            "    retries 2",
            "    option redispatch",
            "",
            "listen stats",
            f"    bind 127.0.0.1:{self._stats_port}",
            "    mode http",
            "    stats enable",
            "    stats uri /",
            "    stats refresh 2s",
            "",
        ]
        with self._lock:
            for service in self._services.values():
                lines += [
                    f"listen {service.proxy}",
                    f"    bind {service.bind_address}:{service.bind_port}",
                    f"    mode {service.mode}",
                    "    balance roundrobin",
                ]
                lines += [f"    {line}" for line in service.health.config_lines()]
                for server in service.servers.values():
                    disabled = " disabled" if server.admin == "maint" else ""
                    weight = 0 if server.admin == "drain" else server.weight
                    lines.append(
                        f"    server {server.name} {server.address}:{server.port} weight {weight} "
                        f"{self.checks.server_options()}{disabled}"
                    )
                lines.append("")
        config = self._workdir / "haproxy.cfg"
        tmp = config.with_suffix(".cfg.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(config)
        if config not in self._files:
            self._files.append(config)

    def add_service(
        self,
        instance_id: str,
        bind_address: str,
        bind_port: int,
        *,
        mode: Literal["tcp", "http"] = "tcp",
        backend_id: str | None = None,
        server_address: str,
        server_port: int,
        health: str = "tcp",
        reload_timeout_s: float = 10.0,
    ) -> None:
        """Front ``instance_id`` on ``bind_address:bind_port`` with its current server as the first server.

        HAProxy cannot create a proxy at run time, so on a running HAProxy this rewrites the config
        (with every server and weight this adapter knows) and reloads the master seamlessly
        (``expose-fd listeners``: listening sockets pass to the new worker).

        Raises:
            ValueError: For a bad ``mode`` or ``health`` (naming the field).
            LoadBalancerError: When the instance is already fronted, the adapter is attached (it did not
                write the config), or the reload fails.
        """
        if mode not in ("tcp", "http"):
            raise ValueError(f"mode: expected 'tcp' or 'http', got {mode!r}")
        spec = ServiceSpec(
            instance_id, bind_address, bind_port, mode, backend_id or instance_id, server_address, server_port, health
        )
        if self._workdir is None:
            raise LoadBalancerError("add_service: an attached HAProxy's config belongs to whoever started it")
        service = self._remember_service(spec)
        if self._process is None:
            return
        self._write_config()
        self._reload(service.proxy, reload_timeout_s)

    def _reload(self, proxy: str, timeout_s: float) -> None:
        assert self._process is not None and self._workdir is not None
        # The master CLI rather than SIGUSR2: a signal sent while the master is still starting is lost,
        # a CLI connection only succeeds once the master loop runs.
        master = self._workdir / "master.sock"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(5.0)
                    sock.connect(str(master))
                    sock.sendall(b"reload\n")
                    while sock.recv(4096):
                        pass
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise LoadBalancerError(f"HAProxy master command 'reload' via {master}: {exc}") from exc
                time.sleep(0.05)
        self._wait_ready(max(deadline - time.monotonic(), 1.0), lambda: proxy in self._proxies_running())
        with self._lock:
            drained = [
                (service.proxy, server.name)
                for service in self._services.values()
                for server in service.servers.values()
                if server.admin == "drain"
            ]
        for proxy_name, server_name in drained:  # drain cannot be written in a config; re-apply it
            self.command(f"set server {proxy_name}/{server_name} state drain")

    def _proxies_running(self) -> set[str]:
        return {row["pxname"] for row in self._stat_rows()}

    # ----------------------------------------------------------------------------------- runtime API

    def command(self, line: str, *, ok: tuple[str, ...] = ("",)) -> str:
        """Send one runtime-API command and return HAProxy's answer.

        Args:
            line: The command (no newline).
            ok: Answers (stripped) that mean success; ``()`` accepts anything except the known error
                answers. Mutating commands answer nothing on success, so the default is ``("",)``.

        Raises:
            LoadBalancerError: Naming the command, when the socket fails or HAProxy answers an error.
        """
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5.0)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise LoadBalancerError(f"HAProxy runtime command {line!r}: socket {self.socket_path}: {exc}") from exc
        answer = b"".join(chunks).decode(errors="replace")
        stripped = answer.strip()
        if ok and stripped not in ok:
            raise LoadBalancerError(f"HAProxy runtime command {line!r} failed: {stripped or '(no answer)'}")
        if not ok and _looks_like_error(stripped):
            raise LoadBalancerError(f"HAProxy runtime command {line!r} failed: {stripped}")
        return answer

    def _stat_rows(self) -> list[dict[str, str]]:
        answer = self.command("show stat -1 4 -1", ok=())
        text = answer.lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def _locate(self, backend_id: str, *, request: str) -> tuple[str, str]:
        """Return ``(proxy, server)`` of ``backend_id``, from this adapter's memory or HAProxy's state."""
        with self._lock:
            proxy = self._service_of_backend.get(backend_id)
            if proxy is not None:
                service = self._services[proxy]
                if backend_id in service.servers:
                    return proxy, service.servers[backend_id].name
        server = haproxy_name("s_", backend_id)
        for row in self._stat_rows():
            if row["svname"] == server:
                return row["pxname"], server
        raise LoadBalancerError(f"{request}: unknown backend {backend_id!r} (no server {server} in HAProxy)")

    def _service_for(self, instance_id: str, *, request: str) -> Service:
        with self._lock:
            proxy = self._service_of_backend.get(instance_id)
            if proxy is None:
                raise LoadBalancerError(f"{request}: instance {instance_id!r} is not fronted by this load balancer")
            return self._services[proxy]

    def register_backend(self, instance_id: str, backend_id: str, address: str, port: int) -> None:
        """Add ``backend_id`` (a replacement) to ``instance_id``'s service with weight 0, checks on.

        The composition root calls this when the instance provider announces a replacement's address, so
        that by the time the workflow sets weights the server exists and has been health-checked.

        Raises:
            LoadBalancerError: When the instance is unknown, the backend already exists, or HAProxy
                refuses one of the commands (the message names it).
        """
        service = self._service_for(instance_id, request="register_backend")
        name = haproxy_name("s_", backend_id)
        with self._lock:
            if backend_id in service.servers:
                raise LoadBalancerError(f"register_backend: backend {backend_id!r} already registered")
            state = ServerState(backend_id, name, address, port, 0)
            service.servers[backend_id] = state
            self._service_of_backend[backend_id] = service.proxy
        target = f"{service.proxy}/{name}"
        try:
            self.command(
                f"add server {target} {address}:{port} weight 0 {self.checks.server_options()}",
                ok=("New server registered.",),
            )
            self.command(f"enable health {target}")
            self.command(f"enable server {target}")
        except LoadBalancerError:
            with self._lock:
                service.servers.pop(backend_id, None)
                self._service_of_backend.pop(backend_id, None)
            raise

    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None:
        """Split ``instance_id``'s traffic; backends of the service not named get weight 0.

        Backends given a positive share are also made ``ready`` (a drained server given traffic again
        must take it). A weight of 0 stops new connections; established ones finish on their server.

        Raises:
            ValueError: When the fractions are invalid (naming the backend).
            LoadBalancerError: When a backend is not part of the instance's service or HAProxy refuses.
        """
        service = self._service_for(instance_id, request="set_weights")
        unknown = [backend for backend in weights if backend not in service.servers]
        if unknown:
            raise LoadBalancerError(f"set_weights: backend(s) {unknown!r} not registered for instance {instance_id!r}")
        integers = integer_weights(weights)
        with self._lock:
            plan = [(server, integers.get(server.backend_id, 0)) for server in service.servers.values()]
        # Raise the new weights before lowering the old ones, so the total never touches 0 mid-change.
        for server, weight in sorted(plan, key=lambda item: -item[1]):
            self._set_server(service, server, weight, "ready" if weight > 0 else server.admin)

    def _set_server(self, service: Service, server: ServerState, weight: int, admin: ServerAdmin) -> None:
        target = f"{service.proxy}/{server.name}"
        if admin != server.admin or admin == "ready":
            self.command(f"set server {target} state {admin}")
        self.command(f"set server {target} weight {weight}")
        with self._lock:
            server.weight = weight
            server.admin = admin

    def drain(self, backend_id: str) -> None:
        """Stop sending new connections to ``backend_id`` while its active checks and sessions go on."""
        proxy, server = self._locate(backend_id, request="drain")
        self.command(f"set server {proxy}/{server} state drain")
        self._remember_admin(backend_id, "drain")

    def _remember_admin(self, backend_id: str, admin: ServerAdmin) -> None:
        with self._lock:
            proxy = self._service_of_backend.get(backend_id)
            if proxy is not None and backend_id in self._services[proxy].servers:
                self._services[proxy].servers[backend_id].admin = admin

    def redirect(self, instance_id: str, replacement_id: str) -> None:
        """Send all traffic to ``replacement_id``: through the redirect hook when one is set."""
        service = self._service_for(instance_id, request="redirect")
        if replacement_id not in service.servers:
            raise LoadBalancerError(f"redirect: backend {replacement_id!r} not registered for {instance_id!r}")
        switched: list[bool] = []

        def switch() -> None:
            if switched:
                return
            switched.append(True)
            self._switch(service, instance_id, replacement_id)

        if self.redirect_hook is None:
            switch()
            return
        self.redirect_hook(instance_id, replacement_id, switch)
        if not switched:
            raise LoadBalancerError(f"redirect: the redirect hook returned without switching {instance_id!r}")

    def _switch(self, service: Service, instance_id: str, replacement_id: str) -> None:
        replacement = service.servers[replacement_id]
        self._set_server(service, replacement, WEIGHT_TOTAL, "ready")
        with self._lock:
            others = [server for backend, server in service.servers.items() if backend != replacement_id]
        for server in others:
            self._set_server(service, server, 0, "drain")
            self.command(f"shutdown sessions server {service.proxy}/{server.name}")
        with self._lock:
            self._service_of_backend[replacement_id] = service.proxy

    def rollback(self, instance_id: str, replacement_id: str, *, source_id: str | None = None) -> None:
        """Give all traffic back to the source and delete ``replacement_id``'s server.

        The source is ``instance_id``'s own first server unless ``source_id`` names another: after an
        earlier migration the service is served by that migration's replacement.
        """
        service = self._service_for(instance_id, request="rollback")
        source = source_id or instance_id
        if source not in service.servers:
            raise LoadBalancerError(f"rollback: {source!r} is not a server of {instance_id!r}'s service")
        self._set_server(service, service.servers[source], WEIGHT_TOTAL, "ready")
        if replacement_id in service.servers:  # absent when the restore failed before registering it
            self._delete_server(service, replacement_id)

    def remove_backend(self, backend_id: str) -> None:
        """Take ``backend_id`` out for good: maintenance, sessions shut down, server deleted.

        Why: after a redirect the old server stays drained (and failing its checks once decommissioned);
        the composition root removes it once the provider has decommissioned the instance.

        Raises:
            LoadBalancerError: When the backend is unknown or is the only server left of its service.
        """
        with self._lock:
            proxy = self._service_of_backend.get(backend_id)
            service = self._services.get(proxy) if proxy else None
        if service is None or backend_id not in service.servers:
            raise LoadBalancerError(f"remove_backend: unknown backend {backend_id!r}")
        if len(service.servers) == 1:
            raise LoadBalancerError(f"remove_backend: {backend_id!r} is the last server of {service.instance_id!r}")
        self._delete_server(service, backend_id)

    def _delete_server(self, service: Service, backend_id: str) -> None:
        server = service.servers[backend_id]
        target = f"{service.proxy}/{server.name}"
        self._set_server(service, server, 0, "maint")
        self.command(f"shutdown sessions server {target}")
        self.command(f"del server {target}", ok=("Server deleted.",))
        with self._lock:
            service.servers.pop(backend_id, None)
            if self._service_of_backend.get(backend_id) == service.proxy and backend_id != service.instance_id:
                self._service_of_backend.pop(backend_id, None)

    # ----------------------------------------------------------------------------------- observation

    def frontend(self, instance_id: str) -> tuple[str, int]:
        """Return the ``(address, port)`` clients use to reach ``instance_id`` through HAProxy."""
        service = self._service_for(instance_id, request="frontend")
        return service.bind_address, service.bind_port

    def server_status(self, backend_id: str) -> dict[str, str]:
        """Return HAProxy's ``show stat`` row for ``backend_id`` (status, weight, check_status, ...)."""
        proxy, server = self._locate(backend_id, request="server_status")
        for row in self._stat_rows():
            if row["pxname"] == proxy and row["svname"] == server:
                return row
        raise LoadBalancerError(f"server_status: HAProxy has no server {proxy}/{server} for {backend_id!r}")

    def weights(self, instance_id: str) -> dict[str, float]:
        """Current split of ``instance_id``'s new traffic as HAProxy applies it (drained/maint/DOWN = 0)."""
        service = self._service_for(instance_id, request="weights")
        rows = {(row["pxname"], row["svname"]): row for row in self._stat_rows()}
        effective: dict[str, int] = {}
        with self._lock:
            servers = list(service.servers.values())
        for server in servers:
            row = rows.get((service.proxy, server.name))
            status = row["status"].split()[0] if row else "MISSING"
            takes_traffic = status == "UP" or (status == "no" and row is not None)
            effective[server.backend_id] = int(row["weight"] or 0) if (row and takes_traffic) else 0
        total = sum(effective.values())
        return {backend: (weight / total if total else 0.0) for backend, weight in effective.items()}

    def serving(self, instance_id: str) -> set[str]:
        """Backends that receive some of ``instance_id``'s new traffic now."""
        return {backend for backend, share in self.weights(instance_id).items() if share > 0}

    def check_health(self, backend_id: str) -> FutureOperation[bool]:
        """Start waiting for HAProxy's own active checks to give a definitive verdict on ``backend_id``.

        The verdict is taken only after one full check interval (plus its timeout) has passed since the
        call, so a server that died just before the call is not reported healthy from a stale check, and
        only when the status is settled (``UP``/``DOWN``, not a transitional ``UP 1/2``). Draining servers
        count as healthy (they pass checks). On timeout the answer is False and ``reason`` says why.
        """
        return self._runner.start_observed(
            f"health {backend_id}", lambda operation: self._await_health(backend_id, operation)
        )

    def _await_health(self, backend_id: str, operation: FutureOperation[bool]) -> bool:
        operation_reason = ""
        settle_s = 2 * self.checks.inter_ms / 1000.0
        started = time.monotonic()
        deadline = started + max(self.health_timeout_s, settle_s)
        while True:
            row = self.server_status(backend_id)
            status = row["status"]
            check = f"{row.get('check_status', '')} {row.get('check_desc', '')}".strip()
            settled = "/" not in status and row.get("check_status") not in ("INI", "")
            if time.monotonic() - started >= settle_s and settled:
                healthy = status.split()[0] in ("UP", "DRAIN", "NOLB")
                operation.reason = f"status {status!r}, last check {check!r}"
                logger.info("health %s: %s", backend_id, operation.reason)
                return healthy
            operation_reason = f"status {status!r}, last check {check!r}"
            if time.monotonic() >= deadline:
                operation.reason = f"no definitive verdict within {self.health_timeout_s:g} s: {operation_reason}"
                logger.warning(
                    "health %s: no definitive verdict within %.1f s (%s)",
                    backend_id,
                    self.health_timeout_s,
                    operation_reason,
                )
                return False
            time.sleep(self.checks.inter_ms / 4000.0)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service to front from the start (see :meth:`HAProxyLoadBalancer.add_service` for the fields)."""

    instance_id: str
    bind_address: str
    bind_port: int
    mode: Literal["tcp", "http"]
    backend_id: str
    server_address: str
    server_port: int
    health: str = "tcp"


_ERROR_PREFIXES = ("Unknown command", "No such", "Require", "Invalid", "Unexpected", "Permission denied")


def _looks_like_error(answer: str) -> bool:
    return answer.startswith(_ERROR_PREFIXES)


def free_tcp_port(address: str) -> int:
    """Return a TCP port that was free on ``address`` a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
