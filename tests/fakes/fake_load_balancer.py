"""A load balancer over a dictionary of weights, with scripted health-check answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.waiting import Operation
from tests.fakes.event_log import EventLog
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_operation import FakeOperation


class FakeLoadBalancer:
    """Implements ``LoadBalancer``.

    Attributes:
        weights: Current traffic split per fronted instance (absent means all to the instance).
        weights_history: Every ``set_weights`` call, in order, as ``(instance_id, weights)``.
        health: Scripted answers per backend, consumed one per check; when exhausted, healthy.
        health_error: When set, every health check fails with it instead of answering.
    """

    def __init__(
        self,
        clock: FakeClock,
        log: EventLog,
        *,
        health: Mapping[str, Sequence[bool]] | None = None,
        check_s: float = 5.0,
        health_error: Exception | None = None,
    ) -> None:
        self._clock = clock
        self._log = log
        self.health = {backend: list(answers) for backend, answers in (health or {}).items()}
        self.check_s = check_s
        self.health_error = health_error
        self.weights: dict[str, dict[str, float]] = {}
        self.weights_history: list[tuple[str, dict[str, float]]] = []

    def set_weights(self, instance_id: str, weights: Mapping[str, float]) -> None:
        split = " ".join(f"{backend}={weight:g}" for backend, weight in weights.items())
        self._log.add(f"lb.set_weights {instance_id} {split}")
        self.weights[instance_id] = dict(weights)
        self.weights_history.append((instance_id, dict(weights)))

    def check_health(self, backend_id: str) -> Operation[bool]:
        self._log.add(f"lb.check_health {backend_id}")
        answers = self.health.get(backend_id, [])
        healthy = answers.pop(0) if answers else True
        return FakeOperation(self._clock, self.check_s, healthy, label="health", error=self.health_error)

    def redirect(self, instance_id: str, replacement_id: str) -> None:
        self._log.add(f"lb.redirect {instance_id} {replacement_id}")
        self.weights[instance_id] = {replacement_id: 1.0}

    def rollback(self, instance_id: str, replacement_id: str) -> None:
        self._log.add(f"lb.rollback {instance_id} {replacement_id}")
        self.weights[instance_id] = {instance_id: 1.0}

    def serving(self, instance_id: str) -> set[str]:
        """Backends that receive some of ``instance_id``'s traffic now."""
        split = self.weights.get(instance_id, {instance_id: 1.0})
        return {backend for backend, weight in split.items() if weight > 0}
