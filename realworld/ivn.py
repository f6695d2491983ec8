"""IVNs (isolated virtual networks) on one machine: one Linux network namespace per IVN.

Why namespaces: an instance restored "into IVN B" should really live on another network, reachable only
through a link, so that the load balancer, replication and health checks cross a real interface. Each IVN
gets a namespace ``mt<run>-<ivn>`` with a veth pair to the root namespace and its own subnet from a
private pool; HAProxy stays in the root namespace and reaches instances over the veths. IPv4 forwarding
is switched on for *our* root-side veths only (``net.ipv4.conf.<veth>.forwarding``), so IVNs reach each
other through the root namespace (a replica in B can follow its source in A) without turning this machine
into a router for anything else.

Names carry the creating process's pid (``mt<pid hex>g<random>``): a later run deletes leftovers whose
creator is dead (a crashed test run) and never touches those of a live parallel run.

When not root, or when ``ip netns`` does not work, :class:`IvnNetworks` falls back to loopback addresses
(IVN k gets ``127.0.<k+1>.1``) in the root namespace and says so in the log: the processes and the
protocol are the same, only the isolation is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

PREFIX = "mt"
DEFAULT_POOL = "10.213.0.0/16"
_LEFTOVER = re.compile(rf"^{PREFIX}([0-9a-f]+)g[0-9a-f]{{2}}")
_IVN_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_LOCK_PATH = Path("/run/lock/mirrortwin-ivn.lock")


class IvnError(RuntimeError):
    """Creating or using an IVN failed; the message names the IVN and the command."""


@dataclass(frozen=True, slots=True)
class IvnAddresses:
    """Where one IVN lives.

    Attributes:
        ivn: The IVN's name.
        instance_address: Address processes inside the IVN bind to; HAProxy and probes connect to it.
        gateway_address: Root-namespace end of the link (the veth address in the root namespace), or
            the instance address itself in the loopback fallback.
        subnet: The IVN's subnet (``127.0.k.0/24`` in the fallback).
        namespace: The network namespace, or ``None`` in the loopback fallback.
        host_veth: The root-side veth, or ``None`` in the fallback.
    """

    ivn: str
    instance_address: str
    gateway_address: str
    subnet: str
    namespace: str | None
    host_veth: str | None


def _run(argv: Sequence[str], *, what: str) -> str:
    completed = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if completed.returncode != 0:
        raise IvnError(f"{what}: `{' '.join(argv)}` failed: {(completed.stderr or completed.stdout).strip()}")
    return completed.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_available() -> tuple[bool, str]:
    """Return whether namespaces can be created here, and why not when they cannot."""
    if os.geteuid() != 0:
        return False, "not running as root"
    if shutil.which("ip") is None:
        return False, "the ip command (iproute2) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return False, f"`ip netns list` failed: {probe.stderr.strip()}"
    return True, ""


def cleanup_leftovers() -> list[str]:
    """Delete namespaces and veths of dead mirrortwin runs (names ``mt<pid>g..`` whose pid is gone).

    Returns:
        The names deleted, for the log.
    """
    removed: list[str] = []
    listing = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, timeout=10)
    names = [entry["name"] for entry in json.loads(listing.stdout or "[]")] if listing.returncode == 0 else []
    links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, timeout=10)
    link_names = [entry["ifname"] for entry in json.loads(links.stdout or "[]")] if links.returncode == 0 else []
    for kind, candidates in (("netns", names), ("link", link_names)):
        for name in candidates:
            match = _LEFTOVER.match(name)
            if match is None or _pid_alive(int(match.group(1), 16)):
                continue
            argv = ["ip", "netns", "del", name] if kind == "netns" else ["ip", "link", "del", name]
            if subprocess.run(argv, capture_output=True, timeout=10).returncode == 0:
                removed.append(name)
    if removed:
        logger.info("removed leftovers of crashed runs: %s", ", ".join(removed))
    return removed


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    """Serialise subnet choice across processes: two runs must not pick the same free subnet at once."""
    _LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _default_gateway() -> tuple[str | None, str | None]:
    out = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True, text=True, timeout=10)
    routes = json.loads(out.stdout or "[]") if out.returncode == 0 else []
    if not routes:
        return None, None
    return routes[0].get("gateway"), routes[0].get("dev")


def subnet_is_free(subnet: ipaddress.IPv4Network) -> bool:
    """Return whether nothing on this machine routes ``subnet`` except the default route.

    Two looks: ``ip route get`` of its first host must resolve through the default route (or be
    unreachable), and no route in the main table may overlap it (a smaller route inside the subnet would
    not show in the first look).
    """
    gateway, device = _default_gateway()
    probe = subprocess.run(
        ["ip", "-j", "route", "get", str(next(subnet.hosts()))], capture_output=True, text=True, timeout=10
    )
    if probe.returncode == 0:
        route = (json.loads(probe.stdout or "[{}]") or [{}])[0]
        if route.get("type") == "local" or route.get("dev") == "lo":
            return False
        if (route.get("gateway"), route.get("dev")) != (gateway, device):
            return False
    table = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True)
    for route in json.loads(table.stdout or "[]") if table.returncode == 0 else []:
        destination = route.get("dst", "")
        if destination in ("", "default"):
            continue
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(destination, strict=False).overlaps(subnet):
                return False
    return True


class IvnNetworks:
    """Creates the IVNs of one run and runs processes inside them.

    Args:
        ivns: IVN names, in order (IVN k is the k-th).
        pool: Private IPv4 pool the IVN subnets are carved from.
        prefix_len: Size of each IVN's subnet (24 by default; 30 is enough for one instance address).
        mode: ``"netns"`` (fail if namespaces are unavailable), ``"loopback"`` (always the fallback) or
            ``"auto"`` (namespaces when possible, else the fallback, logged).

    Use as a context manager, or call :meth:`create` and :meth:`close`.
    """

    def __init__(
        self,
        ivns: Sequence[str],
        *,
        pool: str = DEFAULT_POOL,
        prefix_len: int = 24,
        mode: Literal["auto", "netns", "loopback"] = "auto",
    ) -> None:
        if not ivns:
            raise ValueError("ivns: at least one IVN is needed")
        if len(set(ivns)) != len(ivns):
            raise ValueError(f"ivns: names must be unique, got {list(ivns)!r}")
        if mode not in ("auto", "netns", "loopback"):
            raise ValueError(f"mode: expected 'auto', 'netns' or 'loopback', got {mode!r}")
        try:
            self.pool = ipaddress.IPv4Network(pool)
        except ValueError as exc:
            raise ValueError(f"pool: {exc}") from exc
        if not self.pool.is_private:
            raise ValueError(f"pool: {pool} is not a private range")
        if not self.pool.prefixlen <= prefix_len <= 30:
            raise ValueError(f"prefix_len: must be between {self.pool.prefixlen} and 30, got {prefix_len}")
        self.ivns = list(ivns)
        self.prefix_len = prefix_len
        self.mode = mode
        self.run_id = f"{os.getpid():x}g{secrets.token_hex(1)}"
        self.use_netns = False
        self._addresses: dict[str, IvnAddresses] = {}

    # ----------------------------------------------------------------------------------- life cycle

    def create(self) -> IvnNetworks:
        """Create every IVN (removing leftovers of crashed runs first) and return ``self``."""
        available, why = netns_available() if self.mode != "loopback" else (False, "loopback mode requested")
        if self.mode == "netns" and not available:
            raise IvnError(f"mode 'netns': network namespaces are unavailable ({why})")
        self.use_netns = available
        if not available:
            logger.warning(
                "IVNs %s: network namespaces unavailable (%s); falling back to loopback addresses in the root "
                "namespace, so IVNs are NOT isolated in this run",
                ", ".join(self.ivns),
                why,
            )
            for index, ivn in enumerate(self.ivns):
                address = f"127.0.{index + 1}.1"
                self._addresses[ivn] = IvnAddresses(ivn, address, address, f"127.0.{index + 1}.0/24", None, None)
            return self
        cleanup_leftovers()
        try:
            for index, ivn in enumerate(self.ivns):
                self._addresses[ivn] = self._create_netns(index, ivn)
        except BaseException:
            self.close()
            raise
        return self

    def _create_netns(self, index: int, ivn: str) -> IvnAddresses:
        namespace = f"{PREFIX}{self.run_id}-{_IVN_SAFE.sub('_', ivn)}"[:200]
        host_veth, ns_veth = f"{PREFIX}{self.run_id}{index}h", f"{PREFIX}{self.run_id}{index}n"
        if len(host_veth) > 15:
            raise IvnError(f"IVN {ivn!r}: interface name {host_veth} is longer than 15 characters")
        what = f"creating IVN {ivn!r}"
        _run(["ip", "netns", "add", namespace], what=what)
        _run(["ip", "link", "add", host_veth, "type", "veth", "peer", "name", ns_veth], what=what)
        _run(["ip", "link", "set", ns_veth, "netns", namespace], what=what)
        with _allocation_lock():
            subnet = self._free_subnet(ivn)
            hosts = subnet.hosts()
            gateway, address = str(next(hosts)), str(next(hosts))
            _run(["ip", "addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", host_veth], what=what)
            # Up inside the lock: the subnet's route appears with the link, and only then do other runs see it.
            _run(["ip", "link", "set", host_veth, "up"], what=what)
        netns = ["ip", "-n", namespace]
        _run([*netns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", ns_veth], what=what)
        _run([*netns, "link", "set", ns_veth, "up"], what=what)
        _run([*netns, "link", "set", "lo", "up"], what=what)
        _run([*netns, "route", "add", "default", "via", gateway], what=what)
        forwarding = Path(f"/proc/sys/net/ipv4/conf/{host_veth}/forwarding")
        try:
            forwarding.write_text("1")
        except OSError as exc:  # IVNs still work with HAProxy; only IVN-to-IVN traffic needs forwarding
            logger.warning(
                "IVN %s: cannot enable forwarding on %s (%s); IVNs cannot reach each other", ivn, host_veth, exc
            )
        logger.info("IVN %s: namespace %s, %s on %s (gateway %s)", ivn, namespace, address, subnet, gateway)
        return IvnAddresses(ivn, address, gateway, str(subnet), namespace, host_veth)

    def _free_subnet(self, ivn: str) -> ipaddress.IPv4Network:
        taken = [ipaddress.ip_network(addresses.subnet) for addresses in self._addresses.values()]
        for subnet in self.pool.subnets(new_prefix=self.prefix_len):
            if any(subnet.overlaps(other) for other in taken):
                continue
            if subnet_is_free(subnet):
                return subnet
        raise IvnError(f"creating IVN {ivn!r}: no free /{self.prefix_len} left in pool {self.pool}")

    def close(self) -> None:
        """Delete this run's namespaces and veths (deleting a namespace also deletes its veth pair)."""
        if not self.use_netns:
            self._addresses.clear()
            return
        for addresses in list(self._addresses.values()):
            if addresses.namespace:
                subprocess.run(["ip", "netns", "del", addresses.namespace], capture_output=True, timeout=10)
        # Also whatever a failed creation left half-made: names carry this run's id.
        for index, ivn in enumerate(self.ivns):
            subprocess.run(["ip", "link", "del", f"{PREFIX}{self.run_id}{index}h"], capture_output=True, timeout=10)
            namespace = f"{PREFIX}{self.run_id}-{_IVN_SAFE.sub('_', ivn)}"[:200]
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        self._addresses.clear()

    def __enter__(self) -> IvnNetworks:
        return self.create()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- use

    def addresses(self, ivn: str) -> IvnAddresses:
        """Return where ``ivn`` lives.

        Raises:
            IvnError: Naming the IVN when it is not one of this run's.
        """
        try:
            return self._addresses[ivn]
        except KeyError:
            raise IvnError(f"ivn: unknown IVN {ivn!r}; this run has {sorted(self._addresses)}") from None

    def all_addresses(self) -> Mapping[str, IvnAddresses]:
        """Every IVN of this run, by name."""
        return dict(self._addresses)

    def command_in(self, ivn: str, argv: Sequence[str]) -> list[str]:
        """Return ``argv`` wrapped to run inside ``ivn`` (``ip netns exec``; unchanged in the fallback)."""
        addresses = self.addresses(ivn)
        if addresses.namespace is None:
            return list(argv)
        return ["ip", "netns", "exec", addresses.namespace, *argv]

    def run_in(self, ivn: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``ivn``.

        ``ip netns exec`` execs the program itself, so the returned process's pid is the program's and
        signals reach it directly.
        """
        return subprocess.Popen(self.command_in(ivn, argv), **popen_kwargs)
