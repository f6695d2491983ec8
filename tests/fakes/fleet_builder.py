"""Build small FleetSnapshots by naming hosts and instances, so policy tests read like a diagram."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.fleet import FleetSnapshot

LINEAR_POWER_W: tuple[float, ...] = tuple(100.0 + 10.0 * k for k in range(11))
"""100 W idle to 200 W at full load, linear: power increase is then 100 W x added utilisation."""


@dataclass
class _Host:
    host_id: str
    ivn: str
    capacity_mips: float
    pe_mips: float
    ram_bytes: float
    power_w: Sequence[float]
    available: bool


@dataclass
class _Instance:
    instance_id: str
    host: str | None
    request_mips: float
    capacity_mips: float
    ram_bytes: float
    in_migration: bool
    allowed_ivns: Sequence[str] | None


class FleetBuilder:
    """Collect hosts and instances, then ``build()`` the column arrays a policy sees."""

    def __init__(self, ivns: Sequence[str] = ("ivn-a",), now_s: float = 0.0) -> None:
        self._ivns = tuple(ivns)
        self._now_s = now_s
        self._hosts: list[_Host] = []
        self._instances: list[_Instance] = []

    def host(
        self,
        host_id: str,
        *,
        capacity_mips: float = 1000.0,
        pe_mips: float | None = None,
        ram_bytes: float = 16e9,
        ivn: str | None = None,
        power_w: Sequence[float] = LINEAR_POWER_W,
        available: bool = True,
    ) -> FleetBuilder:
        self._hosts.append(
            _Host(
                host_id,
                ivn or self._ivns[0],
                capacity_mips,
                capacity_mips if pe_mips is None else pe_mips,
                ram_bytes,
                power_w,
                available,
            )
        )
        return self

    def instance(
        self,
        instance_id: str,
        host: str | None,
        *,
        request_mips: float,
        capacity_mips: float = 1000.0,
        ram_bytes: float = 1e9,
        in_migration: bool = False,
        allowed_ivns: Sequence[str] | None = None,
    ) -> FleetBuilder:
        self._instances.append(
            _Instance(instance_id, host, request_mips, capacity_mips, ram_bytes, in_migration, allowed_ivns)
        )
        return self

    def build(self) -> FleetSnapshot:
        host_index = {h.host_id: i for i, h in enumerate(self._hosts)}
        ivn_index = {name: k for k, name in enumerate(self._ivns)}
        inst = self._instances
        allowed = None
        if any(i.allowed_ivns is not None for i in inst):
            allowed = np.array(
                [[i.allowed_ivns is None or name in i.allowed_ivns for name in self._ivns] for i in inst],
                dtype=np.bool_,
            ).reshape(len(inst), len(self._ivns))
        request = np.array([i.request_mips for i in inst], dtype=np.float64)
        capacity = np.array([i.capacity_mips for i in inst], dtype=np.float64)
        return FleetSnapshot(
            now_s=self._now_s,
            ivn_names=self._ivns,
            host_ids=tuple(h.host_id for h in self._hosts),
            host_ivn=np.array([ivn_index[h.ivn] for h in self._hosts], dtype=np.int64),
            host_cpu_capacity_mips=np.array([h.capacity_mips for h in self._hosts], dtype=np.float64),
            host_pe_mips=np.array([h.pe_mips for h in self._hosts], dtype=np.float64),
            host_ram_bytes=np.array([h.ram_bytes for h in self._hosts], dtype=np.float64),
            host_power_w=np.array([list(h.power_w) for h in self._hosts], dtype=np.float64).reshape(
                len(self._hosts), -1 if self._hosts else 11
            ),
            host_available=np.array([h.available for h in self._hosts], dtype=np.bool_),
            instance_ids=tuple(i.instance_id for i in inst),
            instance_host=np.array([-1 if i.host is None else host_index[i.host] for i in inst], dtype=np.int64),
            instance_cpu_capacity_mips=capacity,
            instance_cpu_request_mips=request,
            instance_ram_bytes=np.array([i.ram_bytes for i in inst], dtype=np.float64),
            instance_in_migration=np.array([i.in_migration for i in inst], dtype=np.bool_),
            instance_cpu_history=(request / capacity).reshape(-1, 1) if inst else np.empty((0, 1)),
            instance_allowed_ivns=allowed,
        )
