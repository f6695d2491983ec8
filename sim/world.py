"""The twin's world for one scenario: the SimPy environment, the fleet, and the port adapters over it.

:func:`build_world` is the one place the twin's parts are put together; the runner drives a world
through a whole scenario, and contract tests (and later the gymnasium environment) drive the same
world step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from policies.workflow import MigrationPorts, WorkflowSettings
from scenarios.population import InstancePopulation
from scenarios.smart_health import SmartHealthSampler
from scenarios.spec import Scenario
from sim.adapters import SimClock, SimInstanceProvider, SimMirrorStorePort, SimTelemetry, declared_schedule
from sim.datacenter import Datacenter
from sim.failures import FailureSpecError, HostFailures
from sim.load_balancer import SimLoadBalancer
from sim.migration import MigrationExecutor
from sim.mirroring import SimMirroring
from sim.placement import PlacementError


class SimulationError(Exception):
    """The scenario cannot be simulated as given (e.g. the instances don't fit). One-line message."""


@dataclass
class SimWorld:
    """Everything one run of the twin consists of, with the adapters the core talks to."""

    env: simpy.Environment
    dc: Datacenter
    mirroring: SimMirroring
    executor: MigrationExecutor
    lb: SimLoadBalancer
    clock: SimClock
    telemetry: SimTelemetry
    provider: SimInstanceProvider
    store: SimMirrorStorePort
    failures: HostFailures | None = None  # only when scenario.failures.enabled

    @property
    def ports(self) -> MigrationPorts:
        """The ports the migration workflow needs, over this world."""
        return MigrationPorts(clock=self.clock, provider=self.provider, store=self.store, lb=self.lb)

    def workflow_settings(self) -> WorkflowSettings:
        """The migration workflow's settings as the scenario states them."""
        ctl = self.dc.scenario.controller
        return WorkflowSettings(
            risk_threshold=ctl.risk_threshold, traffic_steps=tuple(ctl.traffic_steps), dwell_s=ctl.dwell_s
        )


def store_ivns(scenario: Scenario, instance_ivn: np.ndarray) -> np.ndarray:
    """IVN whose Mirror Store holds each instance's snapshots: the configured one, else the next IVN."""
    names = [i.name for i in scenario.topology.ivns]
    if scenario.rma.target_ivn is not None:
        return np.full(len(instance_ivn), names.index(scenario.rma.target_ivn), dtype=np.int64)
    return (instance_ivn + 1) % len(names)


def build_world(
    scenario: Scenario,
    population: InstancePopulation,
    *,
    rng: np.random.Generator,
    health_failure_probability: float | None = None,
    health_sampler: SmartHealthSampler | None = None,
) -> SimWorld:
    """Build the SimPy world of ``scenario`` with ``population`` placed at t = 0.

    ``health_sampler`` holds the real SMART readings hosts report when ``failures.health_model`` is
    ``"smart"`` (the composition root loads it from the traces, like the population).

    Raises:
        SimulationError: The instances do not fit the scenario's hosts, or a scripted failure names
            an unknown host or a time past the run.
    """
    env = simpy.Environment()
    try:
        dc = Datacenter(env, scenario, population)
    except PlacementError as exc:
        raise SimulationError(f"scenario {scenario.name}: {exc}") from None
    mirroring = SimMirroring(env, dc, scenario.rma, store_ivns(scenario, np.asarray(population.ivn_index)))
    ctl = scenario.controller
    executor = MigrationExecutor(
        env,
        dc,
        mirroring,
        max_downtime_s=ctl.max_downtime_s,
        max_precopy_rounds=ctl.max_precopy_rounds,
        strategy=ctl.migration_strategy,
    )
    p_fail = ctl.health_failure_probability if health_failure_probability is None else health_failure_probability
    lb = SimLoadBalancer(env, dc, rng, failure_probability=p_fail, detection_delay_s=ctl.health_detection_delay_s)
    failures = None
    if scenario.failures.enabled:
        try:
            failures = HostFailures(
                env,
                dc,
                mirroring,
                executor,
                scenario.failures,
                rng,
                retry_interval_s=ctl.interval_s,
                health_sampler=health_sampler,
            )
        except FailureSpecError as exc:
            raise SimulationError(f"scenario {scenario.name}: {exc}") from None
    return SimWorld(
        env=env,
        dc=dc,
        mirroring=mirroring,
        executor=executor,
        lb=lb,
        clock=SimClock(env),
        telemetry=SimTelemetry(
            dc,
            scenario.rma.sampling_interval_s,
            failures=failures,
            mirroring=mirroring,
            declared_events=declared_schedule(scenario, population),
        ),
        provider=SimInstanceProvider(env, dc, executor),
        store=SimMirrorStorePort(dc, mirroring),
        failures=failures,
    )
