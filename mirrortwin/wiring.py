"""The one place where scenarios, traces, policies and the twin are put together.

Everything else (the command line, notebooks, later the sweeps and the dashboard) asks this module for
a run instead of constructing adapters itself, so there is exactly one answer to "which population,
which policy object, which random streams" for a given scenario name, policy and overrides.

Randomness: the scenario's seed is split with :class:`numpy.random.SeedSequence` into two independent
streams, one that draws the population (trace-to-instance mapping, sampling) and one that drives the
run. Changing the policy therefore never changes which instances exist or what demand they replay,
which is what makes a policy comparison fair.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirrortwin.config import Settings
from policies.consolidation_policy import CONSOLIDATION_POLICIES
from policies.ports import Policy
from policies.registry import make_policy
from scenarios.catalogue import resolve_scenario
from scenarios.population import InstancePopulation
from scenarios.smart_health import SmartHealthSampler
from scenarios.spec import Scenario
from scenarios.workload import build_population
from sim.results import RunResult
from sim.runner import run_scenario

#: ``progress(now_s, duration_s)``, called by the runner as simulated time advances.
ProgressCallback = Callable[[float, float], None]

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def scenario_overrides(policy: str | None, overrides: Mapping[str, Any], base_policy: str) -> dict[str, Any]:
    """Merge ``--policy`` into the ``--set`` overrides.

    A scenario's ``controller.params`` belong to the scenario's own policy; handing them to another
    policy would at best be ignored and at worst rejected. So when ``policy`` differs from the
    scenario's, the params start empty and only the user's ``controller.params.*`` overrides apply.

    Args:
        policy: Policy named on the command line, or None to keep the scenario's.
        overrides: Dotted-path overrides from ``--set``, in the order given.
        base_policy: The policy the scenario names (after ``overrides``).

    Returns:
        Overrides to resolve the scenario with.
    """
    if policy is None or policy == base_policy:
        return dict(overrides)
    merged: dict[str, Any] = {"controller.policy": policy, "controller.params": {}}
    merged.update((k, v) for k, v in overrides.items() if k != "controller.policy")
    return merged


def resolve_for_policy(scenario: str, *, policy: str | None, overrides: Mapping[str, Any]) -> Scenario:
    """Resolve a named scenario (or spec path) with ``--set`` overrides and an optional ``--policy``.

    Raises:
        ScenarioError: The scenario is unknown, invalid, or an override does not apply.
    """
    base = resolve_scenario(scenario, dict(overrides) or None)
    merged = scenario_overrides(policy, overrides, base.controller.policy)
    if merged == dict(overrides):
        return base
    return resolve_scenario(scenario, merged)


def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Return independent generators ``(population_rng, run_rng)`` derived from ``seed``."""
    population_seq, run_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(population_seq), np.random.default_rng(run_seq)


def policy_stream(seed: int) -> np.random.Generator:
    """The generator a policy's own draws come from (RS selection), independent of the other two.

    It is the third child of the scenario seed's sequence, so adding it left the population and run
    streams of :func:`seed_streams` unchanged.
    """
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def make_population(scenario: Scenario, settings: Settings, rng: np.random.Generator) -> InstancePopulation:
    """Build the scenario's instances from the traces found under ``settings.trace_roots``.

    Raises:
        TraceNotFoundError: The scenario's trace is in none of the roots; the message says what to
            download and from where.
    """
    return build_population(scenario, settings.trace_roots, rng=rng, cache_dir=settings.cache_dir)


def make_health_sampler(scenario: Scenario, settings: Settings) -> SmartHealthSampler | None:
    """The real SMART readings hosts report, when the scenario's failures use them; else None.

    Raises:
        TraceNotFoundError, TraceFormatError: the Backblaze folder is missing or malformed (one line).
    """
    if not (scenario.failures.enabled and scenario.failures.health_model == "smart"):
        return None
    return _smart_sampler(tuple(settings.trace_roots))


@functools.lru_cache(maxsize=2)
def _smart_sampler(roots: tuple[Any, ...]) -> SmartHealthSampler:
    """Loaded once per process and trace location: a comparison's variants share it (read-only pools)."""
    return SmartHealthSampler.from_roots(list(roots))


def make_scenario_policy(scenario: Scenario) -> Policy:
    """Construct the policy named by ``scenario.controller`` with its params.

    Under ``accounting = "cloudsim"`` a CloudSim consolidation policy (``thr-mmt``, ``lr-mmt``, ...)
    makes CloudSim's own decisions (``cloudsim_quirks = true``) unless the scenario says otherwise:
    that world exists to reproduce CloudSim, and its bookkeeping is what those decisions read.

    Raises:
        PolicyConfigError: Unknown policy or parameters it does not accept.
    """
    params = dict(scenario.controller.params)
    if scenario.accounting == "cloudsim" and scenario.controller.policy in CONSOLIDATION_POLICIES:
        params.setdefault("cloudsim_quirks", True)
    return make_policy(scenario.controller.policy, params, rng=policy_stream(scenario.seed))


def run_named(
    scenario: str,
    *,
    policy: str | None,
    overrides: Mapping[str, Any],
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Run one scenario with one policy and return its results.

    Args:
        scenario: Catalogue name or path of a spec file.
        policy: Policy name overriding ``controller.policy``; None keeps the scenario's.
        overrides: Dotted-path overrides (``controller.params.threshold=0.7``).
        settings: Where traces and caches are.
        progress: Optional ``progress(now_s, duration_s)`` callback.

    Raises:
        ScenarioError, PolicyConfigError, TraceNotFoundError, SimulationError: one-line user errors
            (see :data:`mirrortwin.errors.USER_ERRORS`).
    """
    spec = resolve_for_policy(scenario, policy=policy, overrides=overrides)
    return run_resolved(spec, settings=settings, progress=progress)


def run_resolved(spec: Scenario, *, settings: Settings, progress: ProgressCallback | None = None) -> RunResult:
    """Run an already resolved scenario with the policy its controller names.

    Callers that need the :class:`Scenario` itself (its description, its seed) resolve it with
    :func:`resolve_for_policy` and run it here, so it is resolved once.

    Args:
        spec: The resolved scenario.
        settings: Where traces and caches are.
        progress: Optional ``progress(now_s, duration_s)`` callback.
    """
    policy = make_scenario_policy(spec)  # before the population: a bad policy fails fast
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, settings, pop_rng)
    sampler = make_health_sampler(spec, settings)
    return run_scenario(spec, population, policy, rng=run_rng, progress=progress, health_sampler=sampler)


@dataclass(frozen=True)
class Variant:
    """One configuration of a comparison: a label, the policy, and its own ``--set`` overrides."""

    label: str
    policy: str
    overrides: Mapping[str, Any]


@dataclass(frozen=True)
class PreparedComparison:
    """Everything a comparison needs, checked before the first run starts.

    Attributes:
        scenarios: The resolved scenario for each variant label, in the order given.
        populations: The instances each variant runs on; variants that do not change the workload
            share one population (same seed, same draw), so they replay the same demand.
    """

    scenarios: dict[str, Scenario]
    populations: dict[str, InstancePopulation]
    health_samplers: dict[str, SmartHealthSampler | None] | None = None

    @property
    def population(self) -> InstancePopulation:
        """The first variant's population (all of them, when no variant changes the workload)."""
        return next(iter(self.populations.values()))


def prepare_comparison(
    scenario: str,
    *,
    policies: Sequence[str] = (),
    overrides: Mapping[str, Any],
    settings: Settings,
    variants: Sequence[Variant] = (),
) -> PreparedComparison:
    """Resolve the scenario for every policy (or variant) and build the populations once.

    Every policy is constructed here, before any run, so a typo in the third name fails in a second
    rather than after two long runs. The population depends only on the workload, the grid and the
    seed, so variants that leave those alone share one build and replay the same demand.

    Raises:
        ScenarioError, PolicyConfigError, TraceNotFoundError, SimulationError: one-line user errors
            (see :data:`mirrortwin.errors.USER_ERRORS`).
    """
    chosen = list(variants) or [Variant(p, p, {}) for p in policies]
    specs = {
        v.label: resolve_for_policy(scenario, policy=v.policy, overrides={**overrides, **v.overrides}) for v in chosen
    }
    for spec in specs.values():
        make_scenario_policy(spec)
    built: dict[str, InstancePopulation] = {}
    populations: dict[str, InstancePopulation] = {}
    for label, spec in specs.items():
        key = json.dumps(
            [spec.workload.model_dump(), spec.seed, spec.step_s, spec.duration_s, spec.start_offset_s], default=str
        )
        if key not in built:
            pop_rng, _ = seed_streams(spec.seed)
            built[key] = make_population(spec, settings, pop_rng)
        populations[label] = built[key]
    samplers = {label: make_health_sampler(spec, settings) for label, spec in specs.items()}
    return PreparedComparison(scenarios=specs, populations=populations, health_samplers=samplers)


def run_prepared(prepared: PreparedComparison, label: str, *, progress: ProgressCallback | None = None) -> RunResult:
    """Run one variant of a prepared comparison on a fresh policy object; the result carries its label."""
    spec = prepared.scenarios[label]
    _, run_rng = seed_streams(spec.seed)
    sampler = (prepared.health_samplers or {}).get(label)
    result = run_scenario(
        spec,
        prepared.populations[label],
        make_scenario_policy(spec),
        rng=run_rng,
        progress=progress,
        health_sampler=sampler,
    )
    if result.policy != label:
        result.summary["policy_name"] = result.policy
        result.policy = label
        result.summary["policy"] = label
    return result


def results_folder_name(scenario: str, policy: str, overrides: Mapping[str, Any]) -> str:
    """Deterministic folder name for a run: ``<scenario>-<policy>[-<digest of overrides>]``.

    No timestamp, so re-running the same command overwrites the same folder and a results path can be
    written into notes and notebooks; overrides add a short digest so different ``--set`` runs don't
    overwrite each other.
    """
    parts = [_UNSAFE_NAME.sub("_", scenario).strip("_.") or "scenario", _UNSAFE_NAME.sub("_", policy)]
    if overrides:
        canonical = json.dumps(sorted((k, v) for k, v in overrides.items()), default=str)
        parts.append(hashlib.sha256(canonical.encode()).hexdigest()[:8])
    return "-".join(parts)
