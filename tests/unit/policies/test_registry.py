"""Policies by name: every registered policy builds, and bad input is one line naming the parameter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import policies.registry as registry
from policies.errors import PolicyConfigError
from policies.fleet import FleetSnapshot
from policies.null_policy import NullPolicy
from policies.records import MigrationPlan
from policies.registry import available_policies, make_policy, register_policy
from policies.threshold_policy import ThresholdPolicy


def test_builtin_policies_are_listed_with_a_description() -> None:
    listed = available_policies()
    assert {"null", "threshold"} <= listed.keys()
    assert all(listed[name] for name in ("null", "threshold"))


@pytest.mark.parametrize("name", sorted(available_policies()))
def test_every_registered_policy_builds_with_defaults_and_is_named(name: str) -> None:
    if name == "lstm":  # a trained model is the one parameter without a default
        with pytest.raises(PolicyConfigError, match=r"controller\.params\.artefact"):
            make_policy(name, {})
        return
    policy = make_policy(name, {}, rng=np.random.default_rng(0))
    assert isinstance(policy.name, str)
    assert policy.name == name


def test_a_policy_that_draws_needs_an_injected_generator() -> None:
    with pytest.raises(PolicyConfigError, match="'lr-rs' draws random numbers"):
        make_policy("lr-rs", {})
    with pytest.raises(PolicyConfigError, match="rng: unknown parameter"):
        make_policy("lr-rs", {"rng": 1}, rng=np.random.default_rng(0))


def test_parameters_reach_the_policy() -> None:
    policy = make_policy("threshold", {"threshold": 0.7, "target_selection": "first_fit"})
    assert isinstance(policy, ThresholdPolicy)
    assert (policy.threshold, policy.target_selection) == (0.7, "first_fit")
    assert isinstance(make_policy("null", {}), NullPolicy)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("threshold", {"threshold": 1.7}, "controller.params.threshold: must be in (0, 1], got 1.7"),
        ("threshold", {"underload_threshold": "low"}, "controller.params.underload_threshold: must be a number"),
        ("threshold", {"treshold": 0.8}, "controller.params.treshold: unknown parameter for 'threshold'; valid: "),
        ("null", {"threshold": 0.8}, "controller.params.threshold: unknown parameter for 'null'; valid: none"),
        (
            "thresold",
            {},
            ("controller.policy: unknown policy 'thresold'; available: arima, health-evacuate, iqr-mc, iqr-mmt"),
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_parameter(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        make_policy(name, params)
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_unknown_parameter_lists_the_valid_ones() -> None:
    with pytest.raises(PolicyConfigError, match="valid: threshold, target_selection, instance_selection"):
        make_policy("threshold", {"bogus": 1})


def test_errors_can_be_located_elsewhere() -> None:
    with pytest.raises(PolicyConfigError, match=r"^sweep\.grid\[2\]\.threshold: must be in"):
        make_policy("threshold", {"threshold": 2.0}, location="sweep.grid[2]")


class FixedPolicy:
    """Always returns the same plan (test double)."""

    name = "fixed"

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        return MigrationPlan.empty()


def test_register_policy_makes_it_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    register_policy("fixed", FixedPolicy)
    assert available_policies()["fixed"] == "Always returns the same plan (test double)."
    assert isinstance(make_policy("fixed", {}), FixedPolicy)
    with pytest.raises(ValueError, match="already registered"):
        register_policy("fixed", FixedPolicy)
