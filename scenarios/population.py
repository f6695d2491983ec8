"""The instances of a scenario, ready for the twin: their sizes, start IVNs and demand series.

:func:`scenarios.workload.build_population` makes one from a scenario and a trace; the twin only
reads it. Row ``i`` of every array and of ``demand`` describes instance ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenarios.traces.trace_set import TraceSet


@dataclass(frozen=True)
class InstancePopulation:
    """Instances with their static attributes and their demand on the scenario's grid.

    Attributes:
        instance_ids: Unique instance ids (``vm-00000`` ...).
        trace_ids: The trace series each instance replays (repeats allowed when sampled).
        type_names: Instance type of each instance.
        mips: CPU capacity of each instance (MIPS); demand is ``demand.cpu_util * mips``.
        ram_bytes: Memory each instance occupies on its host.
        state_bytes: State a migration or full snapshot must move (defaults to ``ram_bytes``).
        ivn_index: Index (into the scenario's IVN list) of the IVN each instance starts in.
        demand: Demand series on the scenario's step, covering at least the scenario's duration.
        pes: vCPUs of each instance (``None``: one each); demand spreads evenly over them.
        event_members: Which instances each of the scenario's ``events`` touches, shape (events,
            instances), resolved once (a random fraction is drawn when the population is built) so
            the demand the twin replays and the schedule declared to the policy name the same
            instances. ``None`` when the scenario declares no events.
    """

    instance_ids: tuple[str, ...]
    trace_ids: tuple[str, ...]
    type_names: tuple[str, ...]
    mips: npt.NDArray[np.float64]
    ram_bytes: npt.NDArray[np.float64]
    state_bytes: npt.NDArray[np.float64]
    ivn_index: npt.NDArray[np.int64]
    demand: TraceSet
    pes: npt.NDArray[np.int64] | None = None
    event_members: npt.NDArray[np.bool_] | None = None

    @property
    def pes_or_ones(self) -> npt.NDArray[np.int64]:
        """Return the vCPUs of each instance, one each when the population does not say."""
        if self.pes is None:
            return np.ones(len(self.instance_ids), dtype=np.int64)
        return np.asarray(self.pes, dtype=np.int64)

    @property
    def n_instances(self) -> int:
        """Number of instances."""
        return len(self.instance_ids)
