"""The twin's load balancer: traffic split between an instance and its replacement, health checks.

Traffic is fluid: an instance's demand is divided between its source host and its replacement in
proportion to the weights, so a progressive shift moves CPU load (and power) step by step. A health
check takes ``health_check_s`` and fails with ``failure_probability`` (drawn from the run's seeded
generator), which is how the twin exercises the workflow's rollback.

With the request model on (``detection_delay_s`` given), a failing check marks the replacement as
failing from the check until the rollback: it takes ``detection_delay_s`` to notice, and the share of
traffic the replacement receives meanwhile fails (``requests_failed_cutover``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import simpy

from sim.datacenter import Datacenter
from sim.operations import SimOperation


def split_backend(backend_id: str) -> tuple[str, str | None]:
    """``vm-1@dc/h00003`` -> (``vm-1``, ``dc/h00003``); a plain instance id has no replacement host."""
    if "@" in backend_id:
        iid, host = backend_id.split("@", 1)
        return iid, host
    return backend_id, None


class SimLoadBalancer:
    """Implements :class:`policies.ports.LoadBalancer` over the twin's traffic split arrays."""

    def __init__(
        self,
        env: simpy.Environment,
        dc: Datacenter,
        rng: np.random.Generator,
        *,
        health_check_s: float = 2.0,
        failure_probability: float = 0.0,
        detection_delay_s: float | None = None,
    ):
        self.env = env
        self.dc = dc
        self.rng = rng
        self.health_check_s = health_check_s
        self.failure_probability = failure_probability
        #: Time to notice a failing replacement; ``None``: a failed check takes ``health_check_s``
        #: and no request accounting is touched (the behaviour without the request model).
        self.detection_delay_s = detection_delay_s
        self.redirects = 0
        self.rollbacks = 0
        #: ``(time_s, action, instance_id, replacement_weight)`` for every traffic change, in order.
        self.log: list[tuple[float, str, str, float]] = []

    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None:
        """Give the replacement its share of ``instance_id``'s traffic (the rest stays on the source)."""
        dc = self.dc
        i = dc.instance_index[instance_id]
        dc.advance()
        total = sum(weights.values()) or 1.0
        shadow = sum(w for b, w in weights.items() if split_backend(b)[1] is not None) / total
        dc.shadow_weight[i] = shadow if dc.shadow_host[i] >= 0 else 0.0
        dc.invalidate()
        self.log.append((float(self.env.now), "weights", instance_id, float(dc.shadow_weight[i])))

    def check_health(self, backend_id: str) -> SimOperation[bool]:
        """Health check that completes after ``health_check_s`` (a failing one: ``detection_delay_s``, if set).

        A replacement whose host has failed (its shadow is gone) fails its check whatever the draw: a
        dead server answers no probe. The draw is made either way, so the random stream, and with it
        every other result of the run, does not depend on whether a host died.
        """
        healthy = bool(self.rng.random() >= self.failure_probability) and self._backend_alive(backend_id)
        delay = self.health_check_s
        if not healthy and self.detection_delay_s is not None:
            delay = self.detection_delay_s
            dc = self.dc
            if dc.requests is not None:
                dc.advance()
                i = dc.instance_index[split_backend(backend_id)[0]]
                dc.requests.replacement_failing[i] = True
                dc.note_changed(i)
        ev = self.env.timeout(delay, value=healthy)
        return SimOperation(ev)

    def _backend_alive(self, backend_id: str) -> bool:
        """Whether the server behind ``backend_id`` still runs (its host is up and still holds it)."""
        iid, host = split_backend(backend_id)
        if host is None:
            return True
        dc = self.dc
        i = dc.instance_index[iid]
        h = dc.host_index[host]
        return bool(dc.host_available[h]) and (int(dc.shadow_host[i]) == h or int(dc.host_of[i]) == h)

    def redirect(self, instance_id: str, replacement_id: str) -> None:
        """All traffic to the replacement: the instance now lives on the replacement's host."""
        dc = self.dc
        i = dc.instance_index[instance_id]
        dc.advance()
        if dc.shadow_host[i] >= 0:
            dc.host_of[i] = dc.shadow_host[i]
        dc.shadow_host[i] = -1
        dc.shadow_weight[i] = 0.0
        dc.invalidate()
        self.redirects += 1
        self.log.append((float(self.env.now), "redirect", instance_id, 1.0))

    def rollback(self, instance_id: str, replacement_id: str) -> None:
        """All traffic back to the source; the replacement stops receiving requests."""
        dc = self.dc
        i = dc.instance_index[instance_id]
        dc.advance()
        dc.shadow_weight[i] = 0.0
        if dc.requests is not None:
            dc.requests.replacement_failing[i] = False
        dc.invalidate()
        self.rollbacks += 1
        self.log.append((float(self.env.now), "rollback", instance_id, 0.0))
