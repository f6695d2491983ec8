"""Client of a Resource Mirroring Agent's control API, as the live controller uses it.

The agent (``mirrortwin agent``, :mod:`realworld.agent`) serves its samples and accepts run-time
changes of its snapshot interval and retention over a small authenticated JSON API. The live
telemetry and mirror-store ports talk to agents only through this class, so a different agent
transport changes one file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class AgentControlError(Exception):
    """An agent refused a request or could not be reached; the message names the agent and the call."""


@dataclass(frozen=True, slots=True)
class AgentSample:
    """One resource sample of an instance, as the agent reports it.

    Attributes:
        timestamp: When it was taken (s since the epoch).
        cpu_util: CPU used as a fraction of the cores the instance is allotted.
        memory_bytes: Resident memory of the instance's processes.
        net_rx_bps: Bytes/s received (counters of the instance's network namespace).
        net_tx_bps: Bytes/s sent.
        disk_read_bps: Bytes/s read from block devices.
        disk_write_bps: Bytes/s written.
    """

    timestamp: float
    cpu_util: float
    memory_bytes: float
    net_rx_bps: float = 0.0
    net_tx_bps: float = 0.0
    disk_read_bps: float = 0.0
    disk_write_bps: float = 0.0

    @classmethod
    def from_json(cls, row: Mapping[str, Any], *, where: str) -> AgentSample:
        """Parse one sample; a malformed one raises :class:`AgentControlError` naming the field."""
        values: dict[str, float] = {}
        for name in cls.__slots__:  # type: ignore[attr-defined]
            raw = row.get(name, 0.0 if name not in ("timestamp", "cpu_util", "memory_bytes") else None)
            try:
                value = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise AgentControlError(f"{where}: sample field {name!r} is {raw!r}, not a number") from None
            if not math.isfinite(value):
                raise AgentControlError(f"{where}: sample field {name!r} is not finite ({raw!r})")
            values[name] = value
        return cls(**values)


class AgentControlClient:
    """Talks to one agent's control API.

    Args:
        base_url: The agent's address, e.g. ``http://127.0.0.1:9101``.
        token: The controller's bearer token for this agent.
        timeout_s: Per-request timeout; a stuck agent must not stall a control tick for long.
    """

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def samples(self, since: float) -> Sequence[AgentSample]:
        """Samples taken after ``since`` (s since the epoch), oldest first."""
        body = self._call("GET", "/v1/samples", params={"since": repr(float(since))})
        rows = body.get("samples") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise AgentControlError(f"agent {self.base_url}: /v1/samples did not return a 'samples' list")
        out = [AgentSample.from_json(r, where=f"agent {self.base_url}") for r in rows if isinstance(r, dict)]
        return sorted(out, key=lambda s: s.timestamp)

    def status(self) -> Mapping[str, Any]:
        """The agent's status document (instance, interval, retention, last snapshot, counters)."""
        body = self._call("GET", "/v1/status")
        if not isinstance(body, dict):
            raise AgentControlError(f"agent {self.base_url}: /v1/status did not return an object")
        return body

    def set_snapshot_interval(self, interval_s: float) -> None:
        """Ask the agent to snapshot every ``interval_s`` seconds from its next snapshot on."""
        self._call("PUT", "/v1/snapshot-interval", json={"interval_s": float(interval_s)})

    def set_retention(self, keep_last: int | None = None, max_age_s: float | None = None) -> None:
        """Change how many snapshots (or how old) the agent keeps in its store."""
        self._call("PUT", "/v1/retention", json={"keep_last": keep_last, "max_age_s": max_age_s})

    def snapshot_now(self) -> Mapping[str, Any]:
        """Take a snapshot at once and return its info (blocks until it is committed)."""
        body = self._call("POST", "/v1/snapshots", timeout=120.0)
        if not isinstance(body, dict):
            raise AgentControlError(f"agent {self.base_url}: /v1/snapshots did not return an object")
        return body

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            extra = {"timeout": timeout} if timeout is not None else {}
            response = self._http.request(method, path, **kwargs, **extra)
        except httpx.HTTPError as exc:
            raise AgentControlError(f"agent {self.base_url}: {method} {path} failed: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise AgentControlError(f"agent {self.base_url}: {method} {path} -> {response.status_code}: {detail}")
        try:
            return response.json()
        except ValueError:
            raise AgentControlError(f"agent {self.base_url}: {method} {path} did not return JSON") from None
