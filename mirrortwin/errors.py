"""Which exceptions are the user's mistakes and which the environment's, for the command line.

Kept apart from :mod:`mirrortwin.wiring` so that catching them costs no plotting, no population
building and no policy registry: a bad flag is reported before any of those load.
"""

from __future__ import annotations

from mirrortwin.live_config import LiveConfigError
from mirrortwin.validation import ReferenceError
from policies.errors import PolicyConfigError
from scenarios.spec import ScenarioError
from scenarios.traces.errors import TraceDownloadError, TraceFormatError, TraceNotFoundError
from sim.runner import SimulationError

#: Errors caused by what the user asked for or gave (spec, names, overrides, missing or malformed
#: traces, a fleet its instances do not fit on). Each one's ``str()`` is a complete one-line
#: message, so the CLI prints it as is and exits with status 2.
USER_ERRORS: tuple[type[Exception], ...] = (
    ScenarioError,
    PolicyConfigError,
    TraceNotFoundError,
    TraceFormatError,
    SimulationError,
    ReferenceError,
    LiveConfigError,
)

#: Failures of the environment rather than of the request (a download that did not complete); also
#: one line each, reported with exit status 1.
ENVIRONMENT_ERRORS: tuple[type[Exception], ...] = (TraceDownloadError,)
