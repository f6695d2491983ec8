"""Inject the real effect of a scenario's scheduled events into the population's demand.

A scenario's ``events`` (maintenance windows, campaigns, seasonal peaks) carry two effects: the
*declared* one an operator announces (which the policy sees, through the twin's telemetry) and the
*actual* one (``actual_multiplier`` ramped over ``ramp_s``), which only this module reads. It
multiplies the demand matrices of the touched instances, step by step, before the twin replays them:

* CPU utilisation is multiplied and capped at the instance's size (utilisation 1, or the trace's own
  value where the trace already exceeds 1): a VM cannot use more CPU than it is provisioned with,
  so a campaign's extra demand beyond that is simply not served (it shows up as a flat top, not as an
  overload of the VM's host beyond the VM's size).
* Network receive/transmit rates are multiplied (no cap) for events that scale network demand
  (campaigns and seasonal peaks by default). The twin's physics does not read them today; they are
  scaled so that the population stays self-consistent for anything that does (forecast-eval, plots).

Several events on one instance at one step multiply. Step ``k`` covers run time ``k * step_s``; an
event covers the steps whose start lies in ``[start_s, end_s)``. With ``ramp_s`` the effect grows
linearly from nothing at ``start_s`` to full strength ``ramp_s`` later, and fades the same way before
``end_s``, so real effects are not perfect boxes.

No events: the population is returned as it is, and no random number is drawn, so runs of scenarios
without events are bit-for-bit what they were.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from scenarios.population import InstancePopulation
from scenarios.spec import EventSpec, Scenario, ScenarioError, locate_field

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def inject_events(
    scenario: Scenario, population: InstancePopulation, *, rng: np.random.Generator, source: str = ""
) -> InstancePopulation:
    """Return ``population`` with every event's real effect in its demand and the touched instances noted.

    Args:
        scenario: The validated scenario; its ``events`` are applied in order.
        population: Instances and their demand, before any event.
        rng: Draws the instances of events that touch a random ``fraction`` (one draw per such event).
        source: The scenario file, for error messages.

    Raises:
        ScenarioError: An event lists an instance id the population does not have.
    """
    if not scenario.events:
        return population
    src = source or scenario.source_file or scenario.name
    members = event_members(scenario, population, rng=rng, source=src)
    demand = population.demand
    times = scenario.step_s * np.arange(demand.n_steps, dtype=np.float64)
    cpu_factor = np.ones((population.n_instances, times.size))
    net_factor = np.ones_like(cpu_factor)
    for event, rows in zip(scenario.events, members, strict=True):
        strength = real_multiplier(event, times)
        active = strength != 1.0
        if not active.any() or not rows.any():
            continue
        cpu_factor[np.ix_(rows, active)] *= strength[active]
        if event.scales_network:
            net_factor[np.ix_(rows, active)] *= strength[active]
    cpu = demand.cpu_util.astype(np.float64)
    ceiling = np.maximum(cpu, 1.0)
    changes: dict[str, object] = {"cpu_util": np.minimum(cpu * cpu_factor, ceiling).astype(demand.cpu_util.dtype)}
    for metric in ("net_rx_bps", "net_tx_bps"):
        matrix = getattr(demand, metric)
        if matrix is not None:
            changes[metric] = (matrix.astype(np.float64) * net_factor).astype(matrix.dtype)
    return replace(population, demand=replace(demand, **changes), event_members=members)  # type: ignore[arg-type]


def real_multiplier(event: EventSpec, times_s: FloatArray) -> FloatArray:
    """The event's real multiplier at each time: 1 outside, ramped to ``actual_multiplier`` inside."""
    inside = (times_s >= event.start_s) & (times_s < event.end_s)
    if event.ramp_s > 0:
        edge = np.minimum(times_s - event.start_s, event.end_s - times_s)
        weight = np.clip(edge / event.ramp_s, 0.0, 1.0)
    else:
        weight = np.ones_like(times_s)
    weight = np.where(inside, weight, 0.0)
    return 1.0 + (event.real_multiplier - 1.0) * weight


def event_members(
    scenario: Scenario, population: InstancePopulation, *, rng: np.random.Generator, source: str = ""
) -> BoolArray:
    """Which instances each event touches: a boolean (events x instances) matrix.

    ``ivn`` selects the instances that *start* in that IVN (demand belongs to an instance wherever it
    runs later); ``fraction`` draws ``round(fraction x N)`` instances (at least one) without
    replacement from ``rng``; ``instance_ids`` must all exist.
    """
    src = source or scenario.source_file or scenario.name
    n = population.n_instances
    names = [i.name for i in scenario.topology.ivns]
    index = {iid: i for i, iid in enumerate(population.instance_ids)}
    out = np.zeros((len(scenario.events), n), dtype=np.bool_)
    for k, event in enumerate(scenario.events):
        if event.ivn is not None:
            out[k] = np.asarray(population.ivn_index) == names.index(event.ivn)
        elif event.fraction is not None:
            size = max(1, round(event.fraction * n))
            out[k, rng.choice(n, size=size, replace=False)] = True
        elif event.instance_ids is not None:
            unknown = [iid for iid in event.instance_ids if iid not in index]
            if unknown:
                field = f"events[{k}].instance_ids"
                raise ScenarioError(
                    f"{locate_field(src, field)}: {field}: unknown instance {unknown[0]!r} "
                    f"(the population has {population.instance_ids[0]} ... {population.instance_ids[-1]})"
                )
            out[k, [index[iid] for iid in event.instance_ids]] = True
        else:
            out[k] = True
    return out


__all__ = ["event_members", "inject_events", "real_multiplier"]
