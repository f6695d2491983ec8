"""A tiny deterministic driver for core workflows on a FakeClock, SimPy-style.

It keeps an event queue ordered by (time, sequence), advances the FakeClock to each event and
resumes the generator with what its command asks for:

* ``Delay(s)``: resume ``s`` later; logs ``"delay <s>"``;
* ``Until(op)``: resume when ``op`` is done (at ``op.completes_at`` for a ``FakeOperation``, else by
  polling), sending ``op.result()`` or throwing its exception; logs ``"<label> done"`` on resume;
* ``Spawn(gen)``: start ``gen`` as a new process and resume the spawner at once (the child takes
  its first step after the spawner yields a wait, as with SimPy's ``env.process``); logs
  ``"spawn <name>"``.

A workflow that raises stops the run with that exception: a crashing workflow is a bug to surface.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from policies.waiting import Delay, Operation, Spawn, Until
from tests.fakes.event_log import EventLog
from tests.fakes.fake_clock import FakeClock


@dataclass
class Process:
    """One running workflow: its name and, once finished, its return value."""

    name: str
    generator: Generator[Any, Any, Any]
    finished: bool = False
    value: Any = None
    children: list[Process] = field(default_factory=list)


class WorkflowRunner:
    """Drive workflows against a FakeClock, logging into an EventLog."""

    def __init__(self, clock: FakeClock, log: EventLog, *, poll_s: float = 1.0) -> None:
        self.clock = clock
        self.log = log
        self.poll_s = poll_s
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._names = itertools.count(1)

    def start(self, generator: Generator[Any, Any, Any], name: str = "main") -> Process:
        process = Process(name, generator)
        self._at(self.clock.now(), lambda: self._step(process, None, None))
        return process

    def run(self, until: float | None = None) -> None:
        """Process events until none is left or the next one is after ``until``."""
        while self._queue:
            time = self._queue[0][0]
            if until is not None and time > until:
                break
            _, _, action = heapq.heappop(self._queue)
            self.clock.advance_to(time)
            action()
        if until is not None and until > self.clock.now():
            self.clock.advance_to(until)

    def run_to_completion(self, generator: Generator[Any, Any, Any]) -> Any:
        """Start ``generator``, run everything, and return its value."""
        process = self.start(generator)
        self.run()
        assert process.finished, f"{process.name} never finished"
        return process.value

    def _at(self, time: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (time, next(self._sequence), action))

    def _step(self, process: Process, value: Any, error: BaseException | None) -> None:
        while True:
            try:
                command = process.generator.throw(error) if error is not None else process.generator.send(value)
            except StopIteration as stop:
                process.finished = True
                process.value = stop.value
                return
            value, error = None, None
            now = self.clock.now()
            if isinstance(command, Spawn):
                # Like SimPy's env.process(): the spawner goes on at once, the child starts after it.
                child = Process(f"{process.name}.{next(self._names)}", command.process)
                process.children.append(child)
                self.log.add(f"spawn {child.name}")
                self._at(now, lambda child=child: self._step(child, None, None))
                continue
            if isinstance(command, Delay):
                self.log.add(f"delay {command.seconds:g}")
                self._at(now + command.seconds, lambda: self._step(process, None, None))
            elif isinstance(command, Until):
                self._wait(process, command.operation)
            else:
                raise TypeError(f"{process.name} yielded {command!r}, not a wait command")
            return

    def _wait(self, process: Process, operation: Operation[Any]) -> None:
        if not operation.done():
            when = getattr(operation, "completes_at", self.clock.now() + self.poll_s)
            self._at(max(when, self.clock.now()), lambda: self._wait(process, operation))
            return
        self.log.add(f"{getattr(operation, 'label', type(operation).__name__)} done")
        try:
            value = operation.result()
        except Exception as exc:
            self._at(self.clock.now(), lambda error=exc: self._step(process, None, error))
        else:
            self._at(self.clock.now(), lambda: self._step(process, value, None))
