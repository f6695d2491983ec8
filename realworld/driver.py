"""Runs the core's sans-I/O workflows on the wall clock: the live counterpart of ``sim.driver``.

The controller and the migration workflow in ``policies`` never sleep or block; they yield
:mod:`policies.waiting` commands. The twin turns those into SimPy events; this driver turns them into
real waits, so the *same generator objects* run against real agents, stores, HAProxy and processes:

* ``Delay(s)`` resumes the workflow ``s`` seconds of wall-clock time later;
* ``Until(op)`` polls ``op.done()`` (live operations run in threads, see ``realworld.operations``)
  and resumes with ``op.result()``, or throws its exception into the workflow at the ``yield``;
* ``Spawn(gen)`` starts ``gen`` as a new process and resumes the spawner at once; the child takes its
  first step after the spawner yields a wait, as with SimPy's ``env.process``.

Design: one thread and one event queue ordered by (due time, sequence), like SimPy's own loop — only
``step`` waits for real time (the same split SimPy's ``RealtimeEnvironment`` makes). Port calls that
take time return operations that run elsewhere, so nothing here blocks longer than a poll period and
``stop()`` from another thread (or a signal handler) ends the run promptly.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from policies.waiting import Delay, Operation, Spawn, Until

log = logging.getLogger(__name__)

#: How often an unfinished operation is polled (s): short against health-check and restore times,
#: long enough that polling costs nothing measurable.
DEFAULT_POLL_S = 0.02


class WallClock:
    """The live :class:`policies.ports.Clock`: seconds since the epoch."""

    def now(self) -> float:
        """Current wall-clock time (s since the epoch)."""
        return time.time()


@dataclass
class LiveProcess:
    """One workflow run by the driver.

    Attributes:
        name: For logs (``main``, ``main.1``, ...).
        finished: Whether the generator has returned or raised.
        value: Its return value once finished.
        error: The exception that ended it, if any (the driver logs it and keeps the others going).
    """

    name: str
    generator: Generator[Any, Any, Any]
    finished: bool = False
    value: Any = None
    error: BaseException | None = None
    children: list[LiveProcess] = field(default_factory=list)


class WallClockDriver:
    """Drive :mod:`policies.waiting` workflows in real time.

    Args:
        clock: The clock the workflows read; the driver schedules on the same clock so a workflow's
            ``clock.now()`` and the driver's notion of "due" agree.
        poll_s: Polling period for unfinished operations.
        sleep: Waits up to the given seconds unless woken (injected so tests of the driver's logic
            need not sleep; defaults to an interruptible wait on an internal event).
    """

    def __init__(
        self,
        clock: WallClock | None = None,
        *,
        poll_s: float = DEFAULT_POLL_S,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not poll_s > 0:
            raise ValueError(f"poll_s: must be > 0, got {poll_s!r}")
        self.clock = clock or WallClock()
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stopped = False
        self._sleep = sleep or self._interruptible_sleep
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, generator: Generator[Any, Any, Any], name: str = "main") -> LiveProcess:
        """Schedule ``generator`` to take its first step now; returns its handle."""
        process = LiveProcess(name, generator)
        self._at(self.clock.now(), lambda: self._step(process, None, None))
        return process

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current step (thread- and signal-safe)."""
        self._stopped = True
        self._wake.set()

    def run(self, *, until: float | None = None, until_done: LiveProcess | None = None) -> None:
        """Process due events until there are none, ``until`` passes or ``until_done`` finishes.

        :meth:`stop` (from another thread or a signal handler) also ends the run.
        """
        self._stopped = False
        while not self._stopped:
            if until_done is not None and until_done.finished:
                return
            with self._lock:
                if not self._queue:
                    return
                due = self._queue[0][0]
            if until is not None and due > until:
                self._sleep(max(0.0, until - self.clock.now()))
                return
            delay = due - self.clock.now()
            if delay > 0:
                self._sleep(delay)
                continue
            with self._lock:
                _, _, action = heapq.heappop(self._queue)
            action()

    def run_to_completion(self, generator: Generator[Any, Any, Any], *, timeout_s: float | None = None) -> Any:
        """Start ``generator``, drive everything until it returns, and return its value.

        Raises:
            TimeoutError: It did not finish within ``timeout_s`` of wall-clock time.
            BaseException: Whatever the workflow raised.
        """
        process = self.start(generator)
        deadline = None if timeout_s is None else self.clock.now() + timeout_s
        self.run(until=deadline, until_done=process)
        if not process.finished:
            raise TimeoutError(f"{process.name} did not finish within {timeout_s} s")
        if process.error is not None:
            raise process.error
        return process.value

    def _interruptible_sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _at(self, when: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._queue, (when, next(self._sequence), action))

    def _step(self, process: LiveProcess, value: Any, error: BaseException | None) -> None:
        while True:
            try:
                command = process.generator.throw(error) if error is not None else process.generator.send(value)
            except StopIteration as stop:
                process.finished, process.value = True, stop.value
                return
            except Exception as exc:  # a crashed workflow ends; the others keep running
                process.finished, process.error = True, exc
                log.exception("workflow %s raised", process.name)
                return
            value, error = None, None
            now = self.clock.now()
            if isinstance(command, Spawn):
                child = LiveProcess(f"{process.name}.{next(self._names)}", command.process)
                process.children.append(child)
                self._at(now, lambda child=child: self._step(child, None, None))
                value = child
                continue
            if isinstance(command, Delay):
                self._at(now + max(float(command.seconds), 0.0), lambda: self._step(process, None, None))
            elif isinstance(command, Until):
                self._wait(process, command.operation)
            else:
                process.finished = True
                process.error = TypeError(f"{process.name} yielded {command!r}, not Delay, Until or Spawn")
            return

    def _wait(self, process: LiveProcess, operation: Operation[Any]) -> None:
        if not operation.done():
            self._at(self.clock.now() + self.poll_s, lambda: self._wait(process, operation))
            return
        try:
            value = operation.result()
        except Exception as exc:
            self._step(process, None, exc)
        else:
            self._step(process, value, None)
