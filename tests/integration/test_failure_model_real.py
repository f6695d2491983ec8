"""The failure classifier on the real Backblaze SMART data: held-out skill, and simulated hosts scored alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mirrortwin.config import load_settings
from policies.failure_prediction import FailureRiskModel, held_out_mask, held_out_metrics, run_evaluation
from scenarios.smart_health import SmartHealthSampler
from scenarios.traces.backblaze import FOLDER, load_backblaze

pytestmark = pytest.mark.traces

SEED = 20190101  # the command's default seed


@pytest.fixture(scope="module")
def smart_root(traces_root: Path) -> Path:
    if not (traces_root / FOLDER).is_dir():
        if load_settings().ci:
            pytest.fail(f"{traces_root / FOLDER} is missing; CI must have ../shared/traces")
        pytest.skip(f"{traces_root / FOLDER} not present")
    return traces_root


@pytest.fixture(scope="module")
def last_day(smart_root: Path):
    return load_backblaze([smart_root])


def test_real_files_match_provenance(smart_root, last_day):
    # PROVENANCE.md: 14,606 + 9,936 + 14,679 + 534 drives; 57 + 122 + 221 + 78 failed.
    assert len(last_day) == 39755
    assert int(last_day["failure"].sum()) == 478
    ten = load_backblaze([smart_root], window="last_10_day")
    assert len(ten) == 5335 and int(ten["failure"].sum()) == 776


@pytest.fixture(scope="module")
def split_model(last_day):
    """The command's split and main model: (test mask, model trained on the other drives)."""
    rng = np.random.default_rng(SEED)
    test = held_out_mask(last_day, rng)
    y = last_day["failure"].to_numpy()
    return test, FailureRiskModel.fit(last_day.loc[~test], y[~test], rng=rng)


def test_held_out_skill_well_above_chance(last_day, split_model):
    test, model = split_model
    y = last_day["failure"].to_numpy()
    m = held_out_metrics("held out", y[test], model.predict_proba(last_day.loc[test]), model.threshold)
    assert m.roc_auc > 0.75
    assert m.pr_auc > 10 * m.no_skill_pr_auc  # base rate about 1.2 %
    assert m.recall > 0.3 and m.precision > 0.3


def test_simulated_hosts_are_scored_like_real_drives(last_day, split_model):
    test, model = split_model
    # Readings drawn from held-out drives only, so the model never saw the rows the sampler reuses.
    sampler = SmartHealthSampler.from_table(last_day.loc[test])
    failing = np.arange(2000) % 10 == 0
    readings = sampler.sample(np.random.default_rng(1), failing)
    m = held_out_metrics("simulated", failing.astype(int), model.predict_proba(readings), model.threshold)
    assert m.roc_auc > 0.75


@pytest.mark.slow
def test_full_evaluation_as_the_command_runs_it(smart_root, last_day):
    ten = load_backblaze([smart_root], window="last_10_day")
    result = run_evaluation(last_day, ten, np.random.default_rng(SEED))
    rows = {r.name: r for r in result.rows}
    assert rows["held-out drives, all models"].roc_auc > 0.75
    assert rows["10-day rows of held-out drives (TOSHIBA)"].roc_auc > 0.6
    for name, row in rows.items():
        if name.startswith("unseen model"):
            assert row.roc_auc > 0.6, name
