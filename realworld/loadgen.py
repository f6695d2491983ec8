"""A bounded write-and-read load on a Redis service, recording exactly what was acknowledged.

The end-to-end migration proof needs a client that behaves like a real one and a ledger precise enough
to say "no acknowledged write was lost": every ``SET`` that returned OK is recorded with its value;
afterwards :meth:`RedisLoad.verify` reads every recorded key from the final writer.

What a request is and when it counts as failed: one command; on a connection error, a timeout or a
``READONLY`` reply (a writer change under way) the client retries the same command after a short
backoff, as production Redis clients do, within ``retry_budget_s``. Only a command that still fails
when its budget runs out is *failed*. Retries are counted too. The longest gap is the longest
interval between two consecutive successful requests of this client, the user-visible stall.

Load is bounded in count and time (``max_requests``, ``duration_s``) so it can never run away.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


@dataclass
class LoadReport:
    """Counts and timings of one load run.

    Attributes:
        requests: Commands issued.
        succeeded: Commands that eventually succeeded.
        failed: Commands that failed after their retry budget.
        retries: Extra attempts made.
        writes_acked: SET commands acknowledged.
        reads: GET commands that returned.
        stale_reads: GET commands of an acknowledged key that returned nothing (a replica behind).
        longest_gap_s: Longest time between two consecutive successes.
        lost_writes: Acknowledged keys missing or wrong when verified (filled by ``verify``).
        errors: A few of the error messages seen, for the report.
    """

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    writes_acked: int = 0
    reads: int = 0
    stale_reads: int = 0
    longest_gap_s: float = 0.0
    lost_writes: int = -1
    errors: list[str] = field(default_factory=list)


class RedisLoad:
    """Writes unique keys through a write endpoint and reads acknowledged ones through a read endpoint.

    Args:
        write: (host, port) of the writers' service (e.g. HAProxy's write frontend).
        read: (host, port) of the readers' service (the one whose traffic shifts progressively).
        rng: Picks which acknowledged keys to read.
        rate_per_s: Target requests per second (writes and reads alternate).
        duration_s: Hard bound on run time.
        max_requests: Hard bound on requests.
        retry_budget_s: How long one command keeps retrying before it counts as failed.
        timeout_s: Socket timeout of one attempt.
        prefix: Key prefix, so several loads can share a server.
    """

    def __init__(
        self,
        write: tuple[str, int],
        read: tuple[str, int],
        *,
        rng: np.random.Generator,
        rate_per_s: float = 200.0,
        duration_s: float = 60.0,
        max_requests: int = 100_000,
        retry_budget_s: float = 2.0,
        timeout_s: float = 0.5,
        prefix: str = "mt",
    ) -> None:
        # redis-py retries silently by default; this client counts every attempt itself, so none hides.
        no_retry = Retry(NoBackoff(), 0)
        self._write = redis.Redis(
            *write, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=no_retry
        )
        self._read = redis.Redis(*read, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=no_retry)
        self._rng = rng
        self.rate_per_s = rate_per_s
        self.duration_s = duration_s
        self.max_requests = max_requests
        self.retry_budget_s = retry_budget_s
        self.prefix = prefix
        self.acked: dict[str, str] = {}
        self.report = LoadReport()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_success: float | None = None

    def start(self) -> None:
        """Run the load in a background thread until :meth:`stop` or a bound is reached."""
        self._thread = threading.Thread(target=self._run, name="redis-load", daemon=True)
        self._thread.start()

    def stop(self) -> LoadReport:
        """Stop the load and return its report (verification is separate: :meth:`verify`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry_budget_s + 5)
        return self.report

    def verify(self, endpoint: tuple[str, int]) -> int:
        """Read every acknowledged key from ``endpoint`` (the final writer); return how many are lost."""
        client = redis.Redis(*endpoint, socket_timeout=5, socket_connect_timeout=5)
        keys = list(self.acked)
        lost = 0
        for start in range(0, len(keys), 1_000):
            batch = keys[start : start + 1_000]
            values = client.mget(batch)
            lost += sum(1 for k, v in zip(batch, values, strict=True) if v is None or v.decode() != self.acked[k])
        self.report.lost_writes = lost
        return lost

    def _run(self) -> None:
        begin = time.monotonic()
        period = 1.0 / self.rate_per_s
        n = 0
        while not self._stop.is_set() and n < self.max_requests and time.monotonic() - begin < self.duration_s:
            due = begin + n * period
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if n % 2 == 0 or not self.acked:
                key, value = f"{self.prefix}:{n}", f"v{n}"
                if self._attempt(lambda key=key, value=value: self._write.set(key, value)):
                    self.acked[key] = value
                    self.report.writes_acked += 1
            else:
                keys = list(self.acked)
                key = keys[int(self._rng.integers(len(keys)))]
                got: list[object] = []
                if self._attempt(lambda key=key, got=got: got.append(self._read.get(key))):
                    self.report.reads += 1
                    if got and got[0] is None:
                        self.report.stale_reads += 1
            n += 1

    def _attempt(self, command) -> bool:  # type: ignore[no-untyped-def]
        self.report.requests += 1
        deadline = time.monotonic() + self.retry_budget_s
        backoff = 0.01
        while True:
            try:
                command()
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, redis.BusyLoadingError) as exc:
                if len(self.report.errors) < 20:
                    self.report.errors.append(f"{type(exc).__name__}: {exc}")
                if time.monotonic() + backoff > deadline or self._stop.is_set():
                    self.report.failed += 1
                    return False
                self.report.retries += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 0.2)
                continue
            except redis.RedisError as exc:
                if len(self.report.errors) < 20:
                    self.report.errors.append(f"{type(exc).__name__}: {exc}")
                self.report.failed += 1
                return False
            now = time.monotonic()
            if self._last_success is not None:
                self.report.longest_gap_s = max(self.report.longest_gap_s, now - self._last_success)
            self._last_success = now
            self.report.succeeded += 1
            return True
