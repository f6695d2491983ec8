"""Client of an agent's control API, for the live controller's ``Telemetry`` and ``MirrorStore`` adapters.

Synchronous (httpx) because the controller's ports are synchronous calls on the wall clock. Every
failure — agent unreachable, refused request, unexpected answer — is one :class:`AgentControlError`
carrying the agent's own one-line reason and HTTP status.
"""

from __future__ import annotations

from typing import Any

import httpx

from realworld.agent.samples import ResourceSample
from realworld.agent.uploader import Retention, SnapshotInfo


class AgentControlError(RuntimeError):
    """A control request failed; ``status`` is the HTTP status (0 when the agent was not reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AgentControlClient:
    """Talks to one agent's ``/v1`` API with its bearer token."""

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        """Remember where the agent is; connections open lazily.

        Args:
            base_url: The agent's ``--listen`` address as a URL, e.g. ``http://127.0.0.1:9100``.
            token: The agent's control token.
            timeout_s: Per-request timeout (``snapshot_now`` takes its own).
            transport: An httpx transport (tests; default: real network).
        """
        self._base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> AgentControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, timeout_s: float | None = None, **kwargs: Any) -> Any:
        try:
            response = self._client.request(
                method, path, timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.HTTPError as exc:
            raise AgentControlError(
                f"agent at {self._base_url}: {method} {path}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            reason = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise AgentControlError(
                f"agent at {self._base_url}: {method} {path}: {response.status_code} {reason}", response.status_code
            )
        if body is None:
            raise AgentControlError(
                f"agent at {self._base_url}: {method} {path}: answer is not JSON", response.status_code
            )
        return body

    def samples(self, since: float | None = None) -> list[ResourceSample]:
        """Samples strictly after epoch ``since`` (all the agent keeps when ``None``), oldest first."""
        params = {} if since is None else {"since": repr(float(since))}
        body = self._call("GET", "/v1/samples", params=params)
        return [ResourceSample(**row) for row in body["samples"]]

    def status(self) -> dict[str, Any]:
        """The agent's status document (see ``docs/agent.md``)."""
        return dict(self._call("GET", "/v1/status"))

    def set_interval(self, interval_s: float) -> float:
        """Set the snapshot interval; returns the interval now in force."""
        return float(self._call("PUT", "/v1/snapshot-interval", json={"interval_s": interval_s})["interval_s"])

    def set_retention(self, retention: Retention) -> None:
        """Set the retention passed with the agent's next uploads."""
        self._call("PUT", "/v1/retention", json={"keep_last": retention.keep_last, "max_age_s": retention.max_age_s})

    def snapshot_now(self, *, timeout_s: float = 600.0) -> SnapshotInfo:
        """Ask for a snapshot now and wait until it is committed; returns what the store reported."""
        body = self._call("POST", "/v1/snapshots", timeout_s=timeout_s)
        body["process_list"] = tuple(body.get("process_list", ()))
        body["file_list"] = tuple(body.get("file_list", ()))
        return SnapshotInfo(**body)
