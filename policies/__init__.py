"""The decision core of mirrortwin: records, ports, policies and the migration workflow.

Everything in this package decides; nothing here acts. Adapters in ``sim`` (the SimPy twin) and
``realworld`` (live systems) implement the ports in :mod:`policies.ports`, and the same policy
objects run unchanged against either. This package must never import ``simpy``, ``sim`` or
``realworld`` (``tests/unit/test_architecture.py`` enforces it).
"""

from policies.records import (
    MigrationOutcome,
    MigrationPlan,
    MigrationResult,
    MigrationSchedule,
    MirrorSnapshot,
    Move,
    RiskAssessment,
)

__all__ = [
    "MigrationOutcome",
    "MigrationPlan",
    "MigrationResult",
    "MigrationSchedule",
    "MirrorSnapshot",
    "Move",
    "RiskAssessment",
]
