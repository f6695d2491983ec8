"""Policies by name, so scenario files, the CLI and sweeps can say ``policy = "threshold"``.

``make_policy`` is the one place a name plus a parameter mapping turns into a policy object. It
checks parameter names against the factory's signature before calling it, so a typo is reported as
an unknown parameter listing the valid ones rather than as a ``TypeError`` traceback, and it
re-labels every :class:`~policies.errors.PolicyConfigError` with where the parameters came from.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from policies.consolidation_policy import CONSOLIDATION_POLICIES
from policies.errors import DEFAULT_LOCATION, PolicyConfigError
from policies.health_policy import HealthEvacuationPolicy
from policies.null_policy import NullPolicy
from policies.ports import Policy
from policies.predictive_policy import PREDICTIVE_POLICIES
from policies.threshold_policy import ThresholdPolicy

PolicyFactory = Callable[..., Policy]

_FACTORIES: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``factory`` available as ``name``; its keyword parameters are the policy's parameters.

    Raises:
        ValueError: ``name`` is empty or already registered (silently replacing a policy would make
            results depend on import order).
    """
    if not name:
        raise ValueError("policy name must not be empty")
    if name in _FACTORIES:
        raise ValueError(f"policy {name!r} is already registered")
    _FACTORIES[name] = factory


def available_policies() -> dict[str, str]:
    """Return every registered policy name with the first line of its factory's docstring."""
    return {name: _summary(factory) for name, factory in sorted(_FACTORIES.items())}


def make_policy(
    name: str,
    params: Mapping[str, Any],
    *,
    location: str = DEFAULT_LOCATION,
    rng: np.random.Generator | None = None,
) -> Policy:
    """Build the policy registered as ``name`` with ``params``.

    Args:
        name: A registered policy name (see :func:`available_policies`).
        params: Keyword parameters for the policy's factory.
        location: Configuration path of ``params``, used to prefix error messages.
        rng: The generator a policy that draws random numbers uses; passed to factories that declare
            a keyword ``rng`` (it is not a parameter a file can set).

    Raises:
        PolicyConfigError: Unknown policy, unknown parameter, or a parameter the policy rejects; the
            message is one line naming it.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        policy_location = location.rsplit(".", 1)[0] if "." in location else ""
        raise PolicyConfigError(
            "policy", f"unknown policy {name!r}; available: {', '.join(sorted(_FACTORIES))}", policy_location
        )
    valid = _parameter_names(factory)
    if valid is not None:
        for key in params:
            if key not in valid:
                listing = ", ".join(valid) if valid else "none"
                raise PolicyConfigError(str(key), f"unknown parameter for {name!r}; valid: {listing}", location)
    kwargs = dict(params)
    if _takes_rng(factory):
        if rng is None:
            raise PolicyConfigError("rng", f"policy {name!r} draws random numbers: inject a numpy Generator", location)
        kwargs["rng"] = rng
    try:
        return factory(**kwargs)
    except PolicyConfigError as err:
        raise err.relocated(location) from None


def _parameter_names(factory: PolicyFactory) -> list[str] | None:
    """Keyword parameter names of ``factory``, or ``None`` when it accepts arbitrary keywords."""
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds and p.name != "rng"]


def _takes_rng(factory: PolicyFactory) -> bool:
    """Whether ``factory`` wants the injected generator (a keyword parameter named ``rng``)."""
    return "rng" in inspect.signature(factory).parameters


def _summary(factory: PolicyFactory) -> str:
    doc = inspect.getdoc(factory) or ""
    return doc.splitlines()[0] if doc else ""


register_policy("null", NullPolicy)
register_policy("threshold", ThresholdPolicy)
register_policy("health-evacuate", HealthEvacuationPolicy)
for _name, _factory in CONSOLIDATION_POLICIES.items():
    register_policy(_name, _factory)
for _name, _factory in PREDICTIVE_POLICIES.items():
    register_policy(_name, _factory)
