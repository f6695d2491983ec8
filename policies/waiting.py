"""How core code waits without sleeping: the commands a workflow yields to its driver.

A workflow (the migration workflow, the controller loop) is a generator. Instead of calling
``time.sleep`` or blocking on I/O it *yields* one of these commands and is resumed by its driver:

* the SimPy driver (``sim.driver``) turns them into simulated-time events;
* a wall-clock driver turns them into real waits.

So the identical generator runs in both worlds ("same code, both worlds" in DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")


@runtime_checkable
class Operation(Protocol[T_co]):
    """A long-running action started through a port (a transfer, a restore, a health check).

    Ports start operations and return at once; the workflow waits for one by yielding
    :class:`Until`. ``result`` raises the operation's error if it failed.
    """

    def done(self) -> bool:
        """Return whether the operation has finished, successfully or not."""
        ...

    def result(self) -> T_co:
        """Return the operation's value; raise its exception if it failed. Only valid when done."""
        ...


@dataclass(frozen=True, slots=True)
class CompletedOperation(Generic[R]):
    """An operation that finished when it was created (e.g. an instantaneous port call)."""

    value: R

    def done(self) -> bool:
        """Return true: the operation finished when it was created."""
        return True

    def result(self) -> R:
        """Return the stored value."""
        return self.value


@dataclass(frozen=True, slots=True)
class Delay:
    """Resume the workflow after ``seconds`` of the driver's clock."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Until:
    """Resume the workflow when ``operation`` is done; the driver sends back its result.

    If ``operation.result()`` raises, the driver throws that exception into the workflow at the
    ``yield`` (``generator.throw``), so a workflow handles a failed operation with an ordinary
    ``try``/``except`` around the yield, in both worlds alike.
    """

    operation: Operation[Any]


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start ``process`` concurrently and resume the spawning workflow immediately."""

    process: Generator[Any, Any, Any]


WaitCommand = Delay | Until | Spawn
Workflow = Generator[WaitCommand, Any, R]
