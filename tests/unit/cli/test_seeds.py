"""compare --seeds: every metric's mean and 95 % confidence half-width over independent seeds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mirrortwin.cli import main
from mirrortwin.report import seeds_markdown, seeds_summary


def _frame(energy: list[float], migrations: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"energy_kwh": energy, "migrations": migrations}, index=["a", "b"])
    frame.index.name = "policy"
    return frame


def test_mean_and_student_t_half_width_by_hand():
    frames = {
        0: _frame([10.0, 1.0], [4.0, 0.0]),
        1: _frame([12.0, 1.0], [6.0, 0.0]),
        2: _frame([14.0, 1.0], [5.0, 0.0]),
    }
    summary = seeds_summary(frames)
    assert list(summary.index) == ["a", "b"]
    # a: energy 10, 12, 14 -> mean 12, s = 2, t(0.975, 2) = 4.302653 -> 4.302653 * 2 / sqrt(3)
    assert summary.at["a", "energy_kwh_mean"] == pytest.approx(12.0)
    assert summary.at["a", "energy_kwh_ci95"] == pytest.approx(4.302653 * 2.0 / math.sqrt(3.0), rel=1e-6)
    assert summary.at["a", "migrations_mean"] == pytest.approx(5.0)
    assert summary.at["b", "energy_kwh_ci95"] == 0.0 and summary.at["b", "seeds"] == 3
    table = seeds_markdown(summary)
    assert "| a | 3 | 12.00 kWh ± 4.97 kWh | 5 ± 2 |" in table


def test_one_seed_has_no_interval():
    summary = seeds_summary({7: _frame([10.0, 1.0], [4.0, 0.0])})
    assert math.isnan(summary.at["a", "energy_kwh_ci95"])
    assert "±" not in seeds_markdown(summary)


@pytest.mark.usefixtures("traces_root")
def test_compare_over_seeds_writes_every_seed_and_the_summary(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "smoke", "--policies", "null,threshold", "--seeds", "2", "--set", "duration_s=3600"]
    assert main([*argv, "--no-plots", "--out", str(out)]) == 0
    assert (out / "seed-0" / "comparison.csv").is_file() and (out / "seed-1" / "comparison.csv").is_file()
    runs = pd.read_csv(out / "seeds.csv", keep_default_na=False)  # a policy is called "null"
    assert sorted(runs["seed"].unique()) == [0, 1] and set(runs["policy"]) == {"null", "threshold"}
    summary = pd.read_csv(out / "seeds-summary.csv", index_col="policy", keep_default_na=False)
    assert (summary["seeds"] == 2).all()
    assert "mean ± 95 % CI" in capsys.readouterr().out
    assert main([*argv[:-4], "--seeds", "0"]) == 2
