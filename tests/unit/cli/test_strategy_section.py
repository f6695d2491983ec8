"""The run report compares each migration strategy's estimate with its outcome."""

from __future__ import annotations

import pandas as pd

from mirrortwin import report
from sim.results import RunResult


def _result(migrations: pd.DataFrame) -> RunResult:
    empty = pd.DataFrame()
    return RunResult("s", "p", 0, empty, empty, migrations, empty, {})


def test_estimate_and_outcome_per_strategy():
    m = pd.DataFrame(
        {
            "kind": ["precopy", "precopy", "mirror_restore", "cold"],
            "start_s": [0.0, 10.0, 0.0, 0.0],
            "end_s": [12.0, 30.0, 5.0, 99.0],
            "estimated_duration_s": [10.0, 10.0, 4.0, 50.0],
            "estimated_downtime_s": [0.1, 0.3, 0.02, 50.0],
            "downtime_s": [0.2, 0.4, 0.03, 60.0],
            "converged": [True, False, True, True],
            "outcome": ["Succeeded", "Succeeded", "Restored", "Aborted"],
        }
    )
    text = "\n".join(report.strategy_section(_result(m)))
    assert "| precopy | 2 | 10.00 | 16.00 | 0.200 | 0.300 | 1 |" in text
    assert "| mirror_restore | 1 | 4.00 | 5.00 | 0.020 | 0.030 | 0 |" in text
    assert "| cold |" not in text  # aborted copies moved nothing


def test_no_section_without_migrations():
    assert report.strategy_section(_result(pd.DataFrame())) == []
