"""The wiring's pure parts: how --policy meets --set, seeds, and results-folder names."""

from __future__ import annotations

import numpy as np
import pytest

from mirrortwin.wiring import resolve_for_policy, results_folder_name, scenario_overrides, seed_streams
from scenarios.spec import ScenarioError


def test_same_policy_keeps_the_scenarios_params() -> None:
    spec = resolve_for_policy("planetlab-20110303", policy="threshold", overrides={})
    assert spec.controller.policy == "threshold"
    assert spec.controller.params == {"threshold": 0.8, "underload_threshold": 1.0}


def test_other_policy_drops_the_scenarios_params() -> None:
    spec = resolve_for_policy("planetlab-20110303", policy="null", overrides={})
    assert spec.controller.policy == "null"
    assert spec.controller.params == {}


def test_set_params_apply_to_the_chosen_policy() -> None:
    spec = resolve_for_policy("planetlab-20110303", policy="threshold", overrides={"controller.params.threshold": 0.7})
    assert spec.controller.params == {"threshold": 0.7, "underload_threshold": 1.0}
    other = resolve_for_policy("planetlab-20110303", policy="null", overrides={"controller.params.x": 1, "seed": 4})
    assert (other.controller.policy, other.controller.params, other.seed) == ("null", {"x": 1}, 4)


def test_policy_flag_wins_over_set_controller_policy() -> None:
    merged = scenario_overrides("null", {"controller.policy": "threshold", "seed": 3}, base_policy="threshold")
    assert merged == {"controller.policy": "null", "controller.params": {}, "seed": 3}


def test_no_policy_flag_leaves_overrides_alone() -> None:
    assert scenario_overrides(None, {"seed": 3}, base_policy="threshold") == {"seed": 3}


def test_bad_override_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="duration_s"):
        resolve_for_policy("planetlab-20110303", policy=None, overrides={"duration_s": -1})


def test_seed_streams_are_reproducible_and_independent() -> None:
    pop_a, run_a = seed_streams(7)
    pop_b, run_b = seed_streams(7)
    draws = [g.random(4) for g in (pop_a, run_a, pop_b, run_b)]
    np.testing.assert_array_equal(draws[0], draws[2])
    np.testing.assert_array_equal(draws[1], draws[3])
    assert not np.array_equal(draws[0], draws[1])


def test_results_folder_names_are_deterministic() -> None:
    assert results_folder_name("smoke", "threshold", {}) == "smoke-threshold"
    a = results_folder_name("smoke", "threshold", {"seed": 1, "duration_s": 60})
    assert a == results_folder_name("smoke", "threshold", {"duration_s": 60, "seed": 1})
    assert a != results_folder_name("smoke", "threshold", {"seed": 2})
    assert a.startswith("smoke-threshold-") and len(a) == len("smoke-threshold-") + 8
    assert results_folder_name("../x y", "p/q", {}) == "x_y-p_q"
