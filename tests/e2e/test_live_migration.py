"""The end-to-end proof of issue 6: a real Redis behind a real HAProxy migrates between IVNs on a risk signal.

A write-and-read load runs through HAProxy while the agent mirrors Redis from IVN A into IVN B's Mirror
Store; an injected health reading makes the (unchanged) health-evacuate policy move it; the workflow
restores from the mirror, catches up by replication, shifts reads step by step, cuts the writer over,
redirects and decommissions the source. Then the same with the replacement frozen so its health check
fails: traffic returns and the source keeps serving. Figures are written to ``live-e2e.json`` in the
test's workdir and printed, for the report.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from mirrortwin.live_fleet import LiveFleet
from policies.records import MigrationOutcome
from tests.e2e.live_harness import migrate_under_load, require_live_tools, two_ivn_config

pytestmark = [pytest.mark.slow]


def _report(tmp_path, name, result, report, fleet):
    figures = {"case": name, "outcome": str(result.outcome), "reason": result.reason,
               "migration_s": result.end_time - result.start_time, **dataclasses.asdict(report),
               "cutovers": [dataclasses.asdict(c) for cut in fleet.cutovers.values() for c in cut.records]}
    (tmp_path / "live-e2e.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps({k: v for k, v in figures.items() if k != "errors"}, default=str))
    return figures


def test_redis_migrates_on_a_risk_signal_without_losing_an_acknowledged_write(tmp_path):
    require_live_tools()
    with LiveFleet(two_ivn_config(tmp_path / "fleet")) as fleet:
        result, report, _ = migrate_under_load(fleet)
        figures = _report(tmp_path, "migrate", result, report, fleet)
        assert result.outcome is MigrationOutcome.SUCCEEDED, result.reason
        assert fleet.placement()["redis-1"] == "ivn-b/h0"  # runs in IVN B now
        assert fleet.identities.physical("redis-1") != "redis-1"  # a new process; the source is gone
        assert "redis-1" not in {r.instance_id for r in fleet.provider.inventory() if r.state == "running"}
    assert report.writes_acked > 200
    assert report.lost_writes == 0, figures
    assert report.failed == 0, figures["errors"]
    assert len(figures["cutovers"]) == 1


def test_a_replacement_failing_its_health_check_rolls_back_and_the_source_keeps_serving(tmp_path):
    require_live_tools()
    config = two_ivn_config(tmp_path / "fleet", faults={"freeze_replacements": ["redis-1"]})
    with LiveFleet(config) as fleet:
        result, report, _ = migrate_under_load(fleet)
        figures = _report(tmp_path, "rollback", result, report, fleet)
        assert result.outcome is MigrationOutcome.ROLLED_BACK, result.reason
        assert "health check" in result.reason
        assert fleet.placement()["redis-1"] == "ivn-a/h0"
        assert fleet.identities.physical("redis-1") == "redis-1"
    assert report.lost_writes == 0, figures
    assert report.writes_acked > 200


def test_the_same_instance_moves_there_and_back_through_each_side_s_mirror(tmp_path):
    """A second migration starts from the replacement process (logical ids, its own agent and mirror)."""
    require_live_tools()
    with LiveFleet(two_ivn_config(tmp_path / "fleet")) as fleet:
        result, report, _ = migrate_under_load(fleet, hops=2)
        figures = _report(tmp_path, "there-and-back", result, report, fleet)
        outcomes = [r.outcome for r in fleet.controller.results]
        assert outcomes == [MigrationOutcome.SUCCEEDED, MigrationOutcome.SUCCEEDED], [
            r.reason for r in fleet.controller.results]
        assert fleet.placement()["redis-1"].startswith("ivn-a/")
        assert fleet.identities.physical("redis-1").split("@")[1].startswith("ivn-a")  # a third process
        serving = fleet.lb.weights("redis-1")
        assert list(serving) == [fleet.identities.physical("redis-1")]  # replaced servers were deleted
    assert report.lost_writes == 0, figures
    assert report.failed == 0, figures["errors"]
    assert len(figures["cutovers"]) == 2
