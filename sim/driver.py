"""Runs the core's sans-I/O workflows as SimPy processes.

The controller and the migration workflow in ``policies`` yield :mod:`policies.waiting` commands;
this driver turns each into a SimPy event: ``Delay`` into a timeout, ``Until`` into the operation's
event (or a poll for foreign operations), ``Spawn`` into a new process. The live world has its own
driver for the same generators.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import simpy

from policies.waiting import Delay, Spawn, Until
from sim.operations import SimOperation

#: Polling period for operations that are not backed by a SimPy event.
_POLL_S = 0.1


def drive(env: simpy.Environment, workflow: Generator[Any, Any, Any]) -> simpy.Process:
    """Start ``workflow`` as a SimPy process; the process's value is the workflow's return value."""
    return env.process(_run(env, workflow))


def _run(env: simpy.Environment, workflow: Generator[Any, Any, Any]):  # type: ignore[no-untyped-def]
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            command = workflow.throw(throw) if throw is not None else workflow.send(send)
        except StopIteration as stop:
            return stop.value
        send, throw = None, None
        if isinstance(command, Delay):
            yield env.timeout(max(command.seconds, 0.0))
        elif isinstance(command, Until):
            op = command.operation
            if isinstance(op, SimOperation):
                if not op.event.processed:
                    # A failure reaches the workflow through op.result() below.
                    with contextlib.suppress(Exception):
                        yield op.event
            else:
                while not op.done():
                    yield env.timeout(_POLL_S)
            try:
                send = op.result()
            except Exception as exc:
                throw = exc
        elif isinstance(command, Spawn):
            send = drive(env, command.process)
        else:
            raise TypeError(f"workflow yielded {command!r}; expected Delay, Until or Spawn")
