"""Issue 4's comparison on bitbrains-failures: reactive failover with and without a mirror, and
predictive migration with a mirror, over the same failures."""

from __future__ import annotations

import pytest

from mirrortwin import report
from mirrortwin.config import load_settings
from mirrortwin.wiring import Variant, prepare_comparison, run_prepared

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("traces_root")]

LOAD = {"threshold": 0.8, "underload_threshold": 1.0}


@pytest.fixture(scope="module")
def frame():
    variants = [
        Variant("reactive-rebuild", "threshold", {"rma.enabled": False}),
        Variant("reactive-mirror", "threshold", {}),
        Variant(
            "predictive-mirror",
            "health-evacuate",
            {"controller.params.base": "threshold", "controller.params.base_params": LOAD},
        ),
    ]
    prepared = prepare_comparison(
        "bitbrains-failures", variants=variants, overrides={"duration_s": 4 * 86_400.0}, settings=load_settings()
    )
    results = [run_prepared(prepared, v.label) for v in variants]
    return report.comparison_frame(results)


def test_every_variant_faces_the_same_failures(frame):
    assert frame["host_failures"].nunique() == 1 and frame["host_failures"].iloc[0] > 0


def test_a_mirror_shortens_failover_and_loses_only_recent_writes(frame):
    rebuild, mirror = frame.loc["reactive-rebuild"], frame.loc["reactive-mirror"]
    assert rebuild["failovers"] > 0 and mirror["failovers"] > 0
    # without a mirror: detection 30 s + boot 180 s, the whole state lost
    assert rebuild["failover_mean_s"] == pytest.approx(210.0)
    assert mirror["failover_mean_s"] < 0.5 * rebuild["failover_mean_s"]
    per_rebuild = rebuild["data_lost_bytes"] / rebuild["failovers"]
    per_mirror = mirror["data_lost_bytes"] / mirror["failovers"]
    assert per_mirror < 0.1 * per_rebuild


def test_predictive_migration_moves_instances_before_their_host_fails(frame):
    predictive, mirror = frame.loc["predictive-mirror"], frame.loc["reactive-mirror"]
    assert predictive["moves_on_failure_risk"] > 0
    assert predictive["failover_downtime_s"] <= 0.5 * mirror["failover_downtime_s"]
    assert predictive["data_lost_bytes"] <= mirror["data_lost_bytes"]


def test_the_report_explains_the_differences(frame):
    text = report.failure_reading(frame)
    assert "## Failures: what mirroring and predictive migration changed" in text
    for label in frame.index:
        assert f"`{label}`" in text
    assert "restored from the latest snapshot" in text and "before their host failed" in text
