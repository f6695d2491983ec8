"""Errors the decision core raises for bad configuration.

A policy is usually built from a scenario file or a CLI flag, so a bad parameter must come back as
one line that names the parameter (``controller.params.threshold: must be in (0, 1], got 1.7``),
never as a traceback from deep inside numpy.
"""

from __future__ import annotations

DEFAULT_LOCATION = "controller.params"


class PolicyConfigError(ValueError):
    """A policy name or parameter is invalid.

    Attributes:
        parameter: The offending parameter (or ``policy`` for an unknown policy name).
        problem: What is wrong with it, without the location prefix.
        location: Dotted path of the parameter's container in the configuration.
    """

    def __init__(self, parameter: str, problem: str, location: str = DEFAULT_LOCATION) -> None:
        self.parameter = parameter
        self.problem = problem
        self.location = location
        super().__init__(f"{location}.{parameter}: {problem}" if location else f"{parameter}: {problem}")

    def relocated(self, location: str) -> PolicyConfigError:
        """Return the same error reported under another configuration path.

        Why: constructors do not know where their parameters came from; the caller that read the
        configuration does, and re-labels the error without losing the parameter name.
        """
        return PolicyConfigError(self.parameter, self.problem, location)
