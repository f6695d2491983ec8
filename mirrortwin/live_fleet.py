"""The live composition root: builds a real fleet from a :class:`~mirrortwin.live_config.LiveConfig`.

This is the only place that constructs the live adapters, as ``mirrortwin.wiring`` is for the twin.
It brings up, in order:

1. the IVNs (network namespaces with veths when root, loopback addresses otherwise);
2. one Mirror Store service per IVN that receives mirrors, *inside* that IVN's namespace, with one
   tenant per IVN that mirrors into it (tokens generated per run, only digests on disk at the store);
3. HAProxy with a read and a write service per instance;
4. the instances (``redis-server`` processes in their IVNs) and one Resource Mirroring Agent sidecar
   per instance (``mirrortwin agent`` processes);
5. the ports (telemetry, mirror store, provider, load balancer in logical ids) and the controller:
   the **same** ``MigrationController`` and the **same** policy class the twin builds from the same
   ``[controller]`` section (``policies.registry.make_policy``).

:class:`LiveFleet` is a context manager: leaving it stops every process it started and removes the
namespaces, whatever happened. ``mirrortwin control`` runs it on the wall clock; the end-to-end tests
run the same object.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mirrortwin.live_config import AppConfig, InstanceConfig, LiveConfig
from policies.controller import ControllerSettings, MigrationController
from policies.registry import make_policy
from policies.workflow import WorkflowSettings
from realworld.agent.control_client import AgentControlClient, AgentControlError
from realworld.driver import LiveProcess, WallClock, WallClockDriver
from realworld.haproxy import HAProxyLoadBalancer, ServiceSpec, free_tcp_port
from realworld.health import HealthFileSource
from realworld.identities import InstanceIdentities, LogicalProvider, SplitLoadBalancer
from realworld.ivn import IvnNetworks
from realworld.mirror_port import LiveMirrorStore
from realworld.process_provider import AppTemplate, HostBudget, InstanceRecord, LocalProcessProvider, RedisPingProbe
from realworld.redis_app import RedisCutover, RedisEndpoint, catch_up
from realworld.store.client import MirrorStoreClient
from realworld.store.tenants import token_digest
from realworld.telemetry import LiveHost, LiveInstance, LiveTelemetry

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_HOOK = REPO_ROOT / "realworld" / "agent" / "hooks" / "redis-bgsave.sh"
STORE_PORT = 8700


class LiveFleetError(RuntimeError):
    """Bringing the live fleet up failed; the message names the part (IVN, store, agent, instance)."""


@dataclasses.dataclass
class _Agent:
    process: subprocess.Popen[bytes]
    client: AgentControlClient
    url: str
    log_path: Path


class LiveFleet:
    """A running live fleet and its controller.

    Args:
        config: The validated configuration.
        workdir: Where data, logs, secrets and results go (defaults to ``config.workdir``).
    """

    def __init__(self, config: LiveConfig, workdir: Path | None = None) -> None:
        self.config = config
        self.workdir = Path(workdir or config.workdir).resolve()
        self.results_dir = self.workdir / "control"
        self._stack = contextlib.ExitStack()
        self._procs: list[subprocess.Popen[bytes]] = []
        self.stores: dict[str, MirrorStoreClient] = {}
        self._store_tokens: dict[tuple[str, str], str] = {}  # (store IVN, tenant IVN) -> token
        self._store_urls: dict[str, str] = {}
        self.agents: dict[str, _Agent] = {}  # by physical instance id
        self.identities = InstanceIdentities([i.id for i in config.instances])
        self.clock = WallClock()
        self.driver = WallClockDriver(self.clock)
        self.controller: MigrationController | None = None
        self.lb: HAProxyLoadBalancer | None = None
        self.split_lb: SplitLoadBalancer | None = None
        self.provider: LocalProcessProvider | None = None
        self.networks: IvnNetworks | None = None
        self.cutovers: dict[str, RedisCutover] = {}
        self._control_token = secrets.token_urlsafe(24)
        self._lock = threading.RLock()
        self._main: LiveProcess | None = None

    # ------------------------------------------------------------------------------ life cycle

    def __enter__(self) -> LiveFleet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Bring everything up (see the module docstring for the order)."""
        cfg = self.config
        for sub in ("secrets", "stores", "agents", "haproxy", "provider", "control"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir / "secrets", 0o700)
        self.networks = IvnNetworks([i.name for i in cfg.ivns], mode=cfg.network)
        self._stack.callback(self.networks.close)
        self.networks.create()
        self._start_stores()
        self.provider = LocalProcessProvider(
            self.networks,
            self.workdir / "provider",
            {
                ivn.name: {
                    LiveConfig.host_id(ivn.name, h.name): HostBudget(h.cores, int(h.memory_mb * 2**20))
                    for h in ivn.hosts
                }
                for ivn in cfg.ivns
            },
            on_replacement=self._on_replacement,
        )
        self._stack.callback(self.provider.close)
        templates = {name: self._template(name, app) for name, app in cfg.apps.items()}
        records = {}
        for inst in cfg.instances:
            host = LiveConfig.host_id(inst.ivn, inst.host) if inst.host else None
            records[inst.id] = self.provider.launch(inst.id, templates[inst.app], inst.ivn, host)
        self._start_haproxy(records)
        for inst in cfg.instances:
            self._start_agent(inst.id, inst, records[inst.id])
        self._build_controller()

    def close(self) -> None:
        """Stop the controller, agents, instances, HAProxy and stores; remove the namespaces."""
        self.driver.stop()
        for agent in list(self.agents.values()):
            _stop_process(agent.process)
            agent.client.close()
        self.agents.clear()
        for proc in self._procs:
            _stop_process(proc)
        self._procs.clear()
        for client in self.stores.values():
            with contextlib.suppress(Exception):
                client.close()
        self._stack.close()

    # ------------------------------------------------------------------------------ parts

    def _start_stores(self) -> None:
        cfg = self.config
        assert self.networks is not None
        targets = sorted({i.mirror_to for i in cfg.ivns if i.mirror_to})
        for store_ivn in targets:
            tenants = [i.name for i in cfg.ivns if i.mirror_to == store_ivn]
            lines = []
            for tenant in tenants:
                token = secrets.token_urlsafe(24)
                self._store_tokens[(store_ivn, tenant)] = token
                (self.workdir / "secrets" / f"store-{store_ivn}-{tenant}.token").write_text(token)
                os.chmod(self.workdir / "secrets" / f"store-{store_ivn}-{tenant}.token", 0o600)
                lines.append(f'[tenants.{tenant}]\ntoken_sha256 = "{token_digest(token)}"\n')
            tenants_file = self.workdir / "stores" / f"{store_ivn}-tenants.toml"
            tenants_file.write_text("\n".join(lines))
            addresses = self.networks.addresses(store_ivn)
            address = addresses.instance_address
            port = STORE_PORT if self.networks.use_netns else free_tcp_port(address)
            argv = [sys.executable, "-m", "mirrortwin", "store", "serve", "--root",
                    str(self.workdir / "stores" / store_ivn), "--tenants", str(tenants_file),
                    "--host", address, "--port", str(port)]
            log_path = self.workdir / "stores" / f"{store_ivn}.log"
            with open(log_path, "wb") as out:
                proc = self.networks.run_in(store_ivn, argv, stdout=out, stderr=subprocess.STDOUT,
                                            env=_child_env())
            self._procs.append(proc)
            url = f"http://{address}:{port}"
            _wait_http(f"{url}/healthz", proc, f"Mirror Store of {store_ivn}", log_path)
            # The controller restores with the tenant of the IVN the instance was mirrored *from*; one
            # client per (store, tenant), looked up when restoring.
            for tenant in tenants:
                client = MirrorStoreClient(url, self._store_tokens[(store_ivn, tenant)])
                self.stores[f"{store_ivn}|{tenant}"] = client
            self._store_urls[store_ivn] = url

    def store_client(self, store_ivn: str, tenant_ivn: str) -> MirrorStoreClient | None:
        """The client of ``store_ivn``'s Mirror Store acting as tenant ``tenant_ivn``."""
        return self.stores.get(f"{store_ivn}|{tenant_ivn}")

    def store_for(self, store_ivn: str, instance_id: str) -> MirrorStoreClient | None:
        """The client that sees ``instance_id``'s snapshots in ``store_ivn``'s store.

        The tenant is the IVN the instance's current process runs in: its agent uploads as that IVN.
        """
        assert self.provider is not None
        try:
            tenant = self.provider.record(self.identities.physical(instance_id)).ivn
        except Exception:  # an unknown instance has no snapshots anywhere
            return None
        return self.store_client(store_ivn, tenant)

    def _template(self, name: str, app: AppConfig) -> AppTemplate:
        argv = [app.redis_server, "--port", "{port}", "--bind", "{address}", "--dir", "{data_dir}",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
                "--repl-backlog-size", "64mb", "--logfile", "{data_dir}/redis.log"]

        def restore(snapshot: Any, data_dir: Path) -> None:
            client = self.store_for(snapshot.ivn, snapshot.instance_id)
            if client is None:
                raise LiveFleetError(f"no Mirror Store of {snapshot.ivn} holds {snapshot.instance_id}")
            client.restore(snapshot.snapshot_id, data_dir)

        def redis_catch_up(source: InstanceRecord, replica: InstanceRecord) -> None:
            catch_up(RedisEndpoint(source.address, source.port), RedisEndpoint(replica.address, replica.port))

        return AppTemplate(
            name=name, argv=argv, probe=RedisPingProbe(), restore=restore, catch_up=redis_catch_up,
            cpu_cores=app.cores, memory_bytes=int(app.memory_mb * 2**20), start_timeout_s=app.start_timeout_s,
        )

    def _start_haproxy(self, records: dict[str, InstanceRecord]) -> None:
        services = []
        for inst in self.config.instances:
            rec = records[inst.id]
            services.append(ServiceSpec(inst.id, "127.0.0.1", inst.read_port, "tcp", inst.id, rec.address, rec.port,
                                        "redis"))
            write = SplitLoadBalancer.write_service(inst.id)
            services.append(ServiceSpec(write, "127.0.0.1", inst.write_port, "tcp", write, rec.address, rec.port,
                                        "redis"))
        self.lb = HAProxyLoadBalancer.start(self.workdir / "haproxy", services=services)
        self._stack.callback(self.lb.close)

        def endpoint(backend_id: str) -> RedisEndpoint:
            assert self.provider is not None
            rec = self.provider.record(backend_id)
            return RedisEndpoint(rec.address, rec.port)

        for inst in self.config.instances:
            self.cutovers[inst.id] = RedisCutover(endpoint)
        self.split_lb = SplitLoadBalancer(self.lb, self.identities, self.cutovers)

    def _start_agent(self, logical_id: str, inst: InstanceConfig, rec: InstanceRecord) -> None:
        cfg = self.config
        mirror_to = cfg.ivn(rec.ivn).mirror_to
        if mirror_to is None:
            log.warning("%s runs in %s, which mirrors nowhere: no agent", rec.instance_id, rec.ivn)
            return
        token_file = self.workdir / "secrets" / f"store-{mirror_to}-{rec.ivn}.token"
        control_file = self.workdir / "secrets" / "control.token"
        if not control_file.exists():
            control_file.write_text(self._control_token)
            os.chmod(control_file, 0o600)
        port = free_tcp_port("127.0.0.1")
        app = cfg.apps[inst.app]
        work = self.workdir / "agents" / rec.instance_id.replace("#", "_").replace("@", "_")
        work.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "mirrortwin", "agent", "--instance-id", logical_id, "--pid", str(rec.pid),
            "--capture", "hook", "--hook-cmd", f"sh {REDIS_HOOK} {rec.port} {rec.address}",
            "--hook-output", str(rec.data_dir / "dump.rdb"), "--store-url", self._store_urls[mirror_to],
            "--store-token-file", str(token_file), "--control-token-file", str(control_file),
            "--interval-s", str(inst.snapshot_interval_s), "--keep-last", str(inst.keep_last),
            "--sample-interval-s", str(cfg.agent_sample_interval_s), "--cores", str(app.cores),
            "--listen", f"127.0.0.1:{port}", "--work-dir", str(work),
        ]
        log_path = work / "agent.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=_child_env())
        url = f"http://127.0.0.1:{port}"
        client = AgentControlClient(url, self._control_token)
        _wait_http(f"{url}/metrics", proc, f"agent of {rec.instance_id}", log_path)
        with self._lock:
            self.agents[rec.instance_id] = _Agent(proc, client, url, log_path)

    def agent_of(self, logical_id: str) -> AgentControlClient | None:
        """The control client of the agent of the instance's current process."""
        with self._lock:
            agent = self.agents.get(self.identities.physical(logical_id))
        return agent.client if agent else None

    def _on_replacement(self, source_id: str, record: InstanceRecord) -> None:
        """A replacement is ready: put it behind HAProxy, give it an agent, inject configured faults."""
        logical = self.identities.logical_of(source_id) or source_id
        assert self.split_lb is not None
        self.split_lb.register_replacement(logical, record.instance_id, record.address, record.port)
        inst = next(i for i in self.config.instances if i.id == logical)
        try:
            self._start_agent(logical, inst, record)
        except LiveFleetError as exc:
            log.warning("%s", exc)
        if logical in self.config.faults.freeze_replacements:
            log.warning("fault injection: freezing %s (pid %d) so its health checks fail",
                        record.instance_id, record.pid)
            os.kill(record.pid, signal.SIGSTOP)

    def _reap_agents(self) -> None:
        """Stop agents whose instance process is gone (decommissioned or rolled back)."""
        assert self.provider is not None
        alive = {r.instance_id for r in self.provider.inventory() if r.state in ("starting", "running")}
        with self._lock:
            gone = [pid for pid in self.agents if pid not in alive]
            for physical in gone:
                agent = self.agents.pop(physical)
                _stop_process(agent.process)
                agent.client.close()
        # A replaced source keeps a drained server in HAProxy until it is gone; then it is deleted, so
        # the services list only live processes (a rolled-back replacement is deleted by the rollback).
        current = set(self.identities.current().values())
        for physical in gone:
            logical = physical.split("@", 1)[0]
            if physical in current or logical not in self.cutovers or self.split_lb is None:
                continue
            try:
                self.split_lb.retire(logical, physical)
            except Exception as exc:  # already deleted (rollback) or never registered: nothing to do
                log.debug("retiring %s from HAProxy: %s", physical, exc)

    def placement(self) -> dict[str, str]:
        """Logical instance -> host slot of its current process."""
        assert self.provider is not None
        current = self.identities.current()
        hosts = {r.instance_id: r.host for r in self.provider.inventory() if r.state in ("starting", "running")}
        return {logical: hosts[physical] for logical, physical in current.items() if physical in hosts}

    def _build_controller(self) -> None:
        cfg = self.config
        assert self.provider is not None and self.split_lb is not None
        hosts = [LiveHost(LiveConfig.host_id(i.name, h.name), i.name, h.cores, h.memory_mb * 2**20)
                 for i in cfg.ivns for h in i.hosts]
        instances = [LiveInstance(i.id, cfg.apps[i.app].cores, cfg.apps[i.app].memory_mb * 2**20)
                     for i in cfg.instances]
        self.telemetry = LiveTelemetry(
            hosts=hosts, ivns=[i.name for i in cfg.ivns], instances=instances, agent_of=self.agent_of,
            placement=self.placement, clock=self.clock, health=HealthFileSource(self.workdir / cfg.health_file),
            in_migration=lambda: self.controller.in_flight if self.controller else frozenset(),
            ivn_cost_per_gb_hour=[i.cost_per_gb_hour for i in cfg.ivns],
            declared_events=[e.declaration() for e in cfg.events],
            sample_interval_s=cfg.agent_sample_interval_s,
        )
        self.mirror_store = LiveMirrorStore(self.store_for, self.agent_of)
        self.policy = make_policy(cfg.controller.policy, dict(cfg.controller.params), location="controller.params")
        wf = cfg.controller.workflow
        settings = ControllerSettings(
            interval_s=cfg.controller.interval_s,
            history_len=cfg.controller.history_len,
            workflow=WorkflowSettings(wf.risk_threshold, tuple(wf.traffic_steps), wf.dwell_s),
        )
        self.controller = MigrationController(
            self.policy, telemetry=self.telemetry, provider=LogicalProvider(self.provider, self.identities),
            store=self.mirror_store, lb=self.split_lb, clock=self.clock, settings=settings,
        )

    # ------------------------------------------------------------------------------ running

    def run(self, *, duration_s: float | None = None, on_tick: Callable[[], None] | None = None) -> None:
        """Run the controller on the wall clock until ``duration_s`` passes or :meth:`stop` is called."""
        assert self.controller is not None
        deadline = None if duration_s is None else self.clock.now() + duration_s

        def housekeeping() -> Any:
            from policies.waiting import Delay

            while True:
                self._reap_agents()
                self.write_results()
                if on_tick is not None:
                    on_tick()
                yield Delay(1.0)

        self._main = self.driver.start(self.controller.run(), name="controller")
        self.driver.start(housekeeping(), name="housekeeping")
        self.driver.run(until=deadline)
        self.write_results()

    def stop(self) -> None:
        """Ask a running :meth:`run` to return (thread- and signal-safe)."""
        self.driver.stop()

    def write_results(self) -> dict[str, Any]:
        """Write ticks, migrations, cut-overs and a summary under ``<workdir>/control``; return the summary."""
        assert self.controller is not None
        out = self.results_dir
        with open(out / "ticks.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "live_migrations", "cross_ivn_migrations", "skipped", "snapshot_changes"])
            for t in list(self.controller.ticks):
                w.writerow(dataclasses.astuple(t))
        rows = [_result_row(r) for r in list(self.controller.results)]
        with open(out / "migrations.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(_result_row(None).keys()))
            w.writeheader()
            w.writerows(rows)
        cutovers = [dataclasses.asdict(c) for cut in self.cutovers.values() for c in cut.records]
        summary = {
            "policy": self.config.controller.policy,
            "policy_class": f"{type(self.policy).__module__}.{type(self.policy).__qualname__}",
            "ticks": len(self.controller.ticks),
            "migrations": rows,
            "cutovers": cutovers,
            "placement": self.placement(),
            "current_process": self.identities.current(),
            "in_flight": sorted(self.controller.in_flight),
        }
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=str))
        tmp.replace(out / "summary.json")
        return summary


def _result_row(result: Any) -> dict[str, Any]:
    if result is None:
        return dict.fromkeys(["instance_id", "target_ivn", "outcome", "replacement_id", "start_time", "end_time",
                              "duration_s", "reason", "move_reason"], "")
    return {
        "instance_id": result.instance_id,
        "target_ivn": result.target_ivn,
        "outcome": str(result.outcome.value if hasattr(result.outcome, "value") else result.outcome),
        "replacement_id": result.replacement_id or "",
        "start_time": result.start_time,
        "end_time": result.end_time,
        "duration_s": result.end_time - result.start_time,
        "reason": result.reason,
        "move_reason": getattr(result, "move_reason", ""),
    }


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log_path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LiveFleetError(f"{what} exited with status {proc.returncode}: {_tail(log_path)}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise LiveFleetError(f"{what} did not answer {url} within {timeout_s:g} s: {_tail(log_path)}")


def _tail(path: Path, limit: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip().replace("\n", " | ")
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


__all__ = ["AgentControlError", "LiveFleet", "LiveFleetError"]
