"""FailureRiskModel on small synthetic data: fitting, readings checks, the artefact, and the metrics."""

from __future__ import annotations

import math

import joblib
import numpy as np
import pandas as pd
import pytest

from policies.failure_prediction import (
    ALL_FEATURES,
    ARTEFACT_VERSION,
    CANDIDATES,
    DEFAULT_FEATURES,
    FailureModelError,
    FailureRiskModel,
    best_f1_threshold,
    held_out_metrics,
    metrics_frame,
    metrics_markdown,
    run_evaluation,
    split_by_drive,
)
from scenarios.traces.backblaze import HEALTH_FEATURES

LOGISTIC_ONLY = CANDIDATES[:1]


def _drives(rng: np.random.Generator, n: int = 600, failed_share: float = 0.1, models: int = 2) -> pd.DataFrame:
    """Drives whose failed members usually carry sector errors, like the real data but tiny."""
    failed = rng.random(n) < failed_share
    frame = pd.DataFrame(
        {
            "drive_model": [f"M{i % models}" for i in range(n)],
            "serial_number": [f"S{i}" for i in range(n)],
            "failure": failed.astype(np.int64),
        }
    )
    noisy = rng.random(n) < 0.7
    frame["reallocated_sectors"] = np.where(
        failed & noisy, rng.integers(1, 500, n), rng.integers(0, 2, n) * (rng.random(n) < 0.05)
    )
    frame["pending_sectors"] = np.where(failed & (rng.random(n) < 0.5), rng.integers(1, 50, n), 0)
    frame["crc_errors"] = rng.integers(0, 3, n) * (rng.random(n) < 0.1)
    frame["power_on_hours"] = rng.integers(1000, 40000, n)
    frame["temperature_c"] = rng.integers(20, 45, n)
    return frame


def test_default_features_are_ones_the_loader_provides():
    assert set(ALL_FEATURES) == set(HEALTH_FEATURES)
    assert set(DEFAULT_FEATURES) <= set(ALL_FEATURES)


def test_fit_ranks_failing_drives_higher_and_is_reproducible():
    data = _drives(np.random.default_rng(0))
    model = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(1))
    p = model.predict_proba(data)
    assert p.shape == (len(data),) and ((p >= 0) & (p <= 1)).all()
    assert p[data["failure"] == 1].mean() > 3 * p[data["failure"] == 0].mean()
    assert model.candidate.name in {c.name for c in CANDIDATES}
    assert set(model.selection) == {c.name for c in CANDIDATES}
    again = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(1))
    np.testing.assert_array_equal(p, again.predict_proba(data))
    assert model.threshold == again.threshold


def test_probabilities_are_near_the_training_base_rate():
    # Class weighting would put the mean near 0.5; the prior correction brings it back near the base rate.
    data = _drives(np.random.default_rng(2), n=1000, failed_share=0.05)
    model = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(3), candidates=LOGISTIC_ONLY)
    assert model.predict_proba(data).mean() < 0.2


def test_array_input_in_feature_order_gives_the_same_scores():
    data = _drives(np.random.default_rng(4))
    model = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(5), candidates=LOGISTIC_ONLY)
    np.testing.assert_array_equal(
        model.predict_proba(data), model.predict_proba(data[list(DEFAULT_FEATURES)].to_numpy())
    )
    assert model.predict_proba(np.zeros(len(DEFAULT_FEATURES))).shape == (1,)


@pytest.mark.parametrize(
    ("readings", "match"),
    [
        (pd.DataFrame({"reallocated_sectors": [1.0]}), "lack column\\(s\\) pending_sectors, crc_errors"),
        (np.ones((2, 5)), r"shape \(2, 5\); expected \(n, 3\)"),
        (np.array([[1.0, -1.0, 0.0]]), "'pending_sectors' of row 0 is -1.0"),
        (np.array([[1.0, 0.0, np.inf]]), "'crc_errors' of row 0 is inf"),
        (pd.DataFrame({"reallocated_sectors": ["a"], "pending_sectors": [0], "crc_errors": [0]}), "not numeric"),
    ],
)
def test_bad_readings_are_one_clear_error(readings, match):
    data = _drives(np.random.default_rng(6))
    model = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(7), candidates=LOGISTIC_ONLY)
    with pytest.raises(FailureModelError, match=match):
        model.predict_proba(readings)


def test_bad_labels_are_refused():
    data = _drives(np.random.default_rng(8))
    with pytest.raises(FailureModelError, match="one class only"):
        FailureRiskModel.fit(data, np.zeros(len(data)), rng=np.random.default_rng(0))
    with pytest.raises(FailureModelError, match="0 \\(healthy\\) or 1"):
        FailureRiskModel.fit(data, np.full(len(data), 2), rng=np.random.default_rng(0))


def test_artefact_round_trip_and_mismatches(tmp_path):
    data = _drives(np.random.default_rng(9))
    model = FailureRiskModel.fit(data, data["failure"], rng=np.random.default_rng(10), candidates=LOGISTIC_ONLY)
    model.provenance = {"seed": 10}
    path = model.save(tmp_path / "sub" / "model.joblib")
    loaded = FailureRiskModel.load(path, features=DEFAULT_FEATURES)
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))
    assert (loaded.threshold, loaded.features, loaded.candidate, loaded.provenance) == (
        model.threshold,
        model.features,
        model.candidate,
        {"seed": 10},
    )

    with pytest.raises(FailureModelError, match="model reads features \\(reallocated_sectors"):
        FailureRiskModel.load(path, features=ALL_FEATURES)

    payload = joblib.load(path)
    joblib.dump({**payload, "version": ARTEFACT_VERSION + 1}, tmp_path / "newer.joblib")
    with pytest.raises(FailureModelError, match="artefact version 2, this code reads version 1"):
        FailureRiskModel.load(tmp_path / "newer.joblib")
    joblib.dump({**payload, "sklearn_version": "0.1"}, tmp_path / "old.joblib")
    with pytest.raises(FailureModelError, match=r"trained with scikit-learn 0\.1"):
        FailureRiskModel.load(tmp_path / "old.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(FailureModelError, match=r"junk\.joblib: not a readable failure-model artefact"):
        FailureRiskModel.load(tmp_path / "junk.joblib")
    joblib.dump({"something": "else"}, tmp_path / "other.joblib")
    with pytest.raises(FailureModelError, match="not a mirrortwin-failure-risk artefact"):
        FailureRiskModel.load(tmp_path / "other.joblib")
    with pytest.raises(FailureModelError, match="no failure-model artefact"):
        FailureRiskModel.load(tmp_path / "missing.joblib")


def test_metrics_on_a_known_case():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    m = held_out_metrics("tiny", y, p, threshold=0.5)
    assert (m.rows, m.drives, m.positives) == (4, 4, 2)
    assert m.precision == 1.0 and m.recall == 0.5
    assert m.roc_auc == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs ordered right
    assert m.pr_auc == pytest.approx((1.0 + 2 / 3) / 2)  # precision at each positive, averaged
    assert m.base_rate == 0.5 == m.no_skill_pr_auc
    nobody = held_out_metrics("none flagged", y, p, threshold=0.9)
    assert math.isnan(nobody.precision) and nobody.recall == 0.0
    one_class = held_out_metrics("healthy only", [0, 0], [0.1, 0.2], threshold=0.5)
    assert math.isnan(one_class.roc_auc) and math.isnan(one_class.pr_auc)
    table = metrics_markdown([m, one_class])
    assert "| tiny | 4 | 4 | 2 | 50.00% | 0.500 | 1.000 | 0.500 | 0.750 | 0.833 | 0.500 |" in table
    assert "n/a" in table
    assert metrics_frame([m])["roc_auc"].iloc[0] == pytest.approx(0.75)


def test_best_f1_threshold():
    # Flagging p >= 0.35 catches both failures with one false alarm: F1 0.8, the best available.
    assert best_f1_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.35)
    assert best_f1_threshold([0, 1, 1], [0.2, 0.6, 0.9]) == pytest.approx(0.6)


def test_split_by_drive_is_stratified_grouped_and_seeded():
    drives = np.repeat([f"d{i}" for i in range(100)], 3)  # three rows per drive
    labels = np.repeat((np.arange(100) < 20).astype(int), 3)
    strata = np.repeat(np.where(np.arange(100) % 2 == 0, "A", "B"), 3)
    test = split_by_drive(drives, labels, strata, np.random.default_rng(11), 0.3)
    per_drive = pd.Series(test).groupby(drives).agg(["min", "max"])
    assert (per_drive["min"] == per_drive["max"]).all()  # a drive is never split
    test_drives = per_drive.index[per_drive["max"]]
    assert len(test_drives) == 30
    failed_test = [d for d in test_drives if int(d[1:]) < 20]
    assert len(failed_test) == 6  # 30 % of the 20 failed drives (10 per stratum -> 3 + 3)
    np.testing.assert_array_equal(test, split_by_drive(drives, labels, strata, np.random.default_rng(11), 0.3))
    with pytest.raises(FailureModelError, match="test share"):
        split_by_drive(drives, labels, strata, np.random.default_rng(0), 1.0)


def test_run_evaluation_reports_every_set_with_its_base_rate():
    data = _drives(np.random.default_rng(12), n=800)
    ten = pd.concat([data[data["drive_model"] == "M1"]] * 2, ignore_index=True)
    lines: list[str] = []
    result = run_evaluation(data, ten, np.random.default_rng(13), progress=lines.append)
    names = [r.name for r in result.rows]
    assert names[0] == "held-out drives, all models"
    assert "held-out drives, M0" in names and "10-day rows of held-out drives (TOSHIBA)" in names
    assert "unseen model M1 (trained on the others)" in names
    assert names[-1].endswith("(date-confounded)")
    assert result.train_drives + result.test_drives == len(data)
    main = result.rows[0]
    assert main.rows == result.test_drives
    assert main.roc_auc > 0.7
    ten_row = result.rows[names.index("10-day rows of held-out drives (TOSHIBA)")]
    assert ten_row.rows == 2 * ten_row.drives
    assert lines and lines[0].startswith("training on")
