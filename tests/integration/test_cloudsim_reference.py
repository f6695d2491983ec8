"""The twin under ``accounting = "cloudsim"`` against CloudSim 3.0.3's own runs.

Two levels, both on the real PlanetLab days of ``../shared/traces`` and the reference files of
``../shared/reference``:

* step level (day 20110303, CloudSim's native file order): the initial placement, every started
  migration (time, VM, source, target) and every energy frame must equal CloudSim's verbose logs
  for the four runners logged (LR-MMT, THR-MMT-0.8, IQR-MC, MAD-MMT) and DVFS;
* table level (slow): every sorted row of ``cloudsim-3.0.3-planetlab.csv`` within the issue's
  tolerances, through ``mirrortwin validate``'s own function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mirrortwin.config import load_settings
from mirrortwin.validation import load_reference, twin_policy_for, validate
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from sim.runner import run_scenario

RUNNERS = {  # CloudSim runner class -> reference policy name
    "LrMmt": "LR-MMT-1.2",
    "ThrMmt": "THR-MMT-0.8",
    "IqrMc": "IQR-MC-1.5",
    "MadMmt": "MAD-MMT-2.5",
    "Dvfs": "DVFS",
}


@pytest.fixture(scope="module")
def reference_dir(traces_root: Path) -> Path:
    ref = traces_root.parent / "reference"
    if not (ref / "cloudsim-3.0.3-planetlab.csv").is_file():
        if load_settings().ci:
            pytest.fail(f"reference folder {ref} is missing; CI must have ../shared/reference")
        pytest.skip(f"reference folder {ref} not present")
    return ref


def _host(ids: pd.Series) -> np.ndarray:
    return ids.str.rsplit("/h", n=1).str[1].astype(int).to_numpy()


def _run_native(reference_dir: Path, cloudsim_policy: str):
    twin = twin_policy_for(cloudsim_policy)
    assert twin is not None
    steps = reference_dir / "cloudsim-20110303-steps"
    overrides = {
        **twin.overrides,
        **{f"controller.params.{k}": v for k, v in twin.params.items()},
        "workload.mapping": "listed",
        "workload.series_file": str(steps / "map_20110303_native.csv"),
    }
    spec = resolve_for_policy("planetlab-20110303", policy=twin.name, overrides=overrides)
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    return run_scenario(spec, population, make_scenario_policy(spec), rng=run_rng)


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_native_day_matches_cloudsim_step_logs(reference_dir, runner):
    steps = reference_dir / "cloudsim-20110303-steps"
    result = _run_native(reference_dir, RUNNERS[runner])

    placement = pd.read_csv(steps / f"orig_{runner}_20110303_native_initial_placement.csv.gz")
    np.testing.assert_array_equal(_host(result.instances["initial_host"]), placement["host_id"].to_numpy())

    expected = pd.read_csv(steps / f"orig_{runner}_20110303_native_migrations.csv.gz")
    got = result.migrations
    assert len(got) == len(expected)
    if len(expected):
        np.testing.assert_allclose(got["start_s"].to_numpy(), expected["time_s"].to_numpy(), atol=0.006)
        vm = got["instance_id"].str.split("-").str[1].astype(int).to_numpy()
        np.testing.assert_array_equal(vm, expected["vm_id"].to_numpy())
        np.testing.assert_array_equal(_host(got["source_host"]), expected["from_host"].to_numpy())
        np.testing.assert_array_equal(_host(got["target_host"]), expected["to_host"].to_numpy())

    frames = pd.read_csv(steps / f"orig_{runner}_20110303_native_energy_frames.csv.gz")
    mine = result.extra["energy_frames"]
    assert len(mine) == len(frames)
    np.testing.assert_allclose(mine["time_s"].to_numpy(), frames["time_s"].to_numpy(), atol=0.006)
    # the log prints W*s with 2 decimals
    np.testing.assert_allclose(mine["energy_j"].to_numpy(), frames["frame_energy_Ws"].to_numpy(), atol=0.0051)

    summary = (steps / f"orig_{runner}_20110303_native_summary.txt").read_text()
    line = next(x for x in summary.splitlines() if x.startswith("Energy consumption:"))
    assert f"{result.summary['energy_kwh']:.2f}" == line.split(":")[1].split()[0]


@pytest.mark.slow
def test_every_public_day_is_within_tolerance(reference_dir):
    reference = load_reference(reference_dir / "cloudsim-3.0.3-planetlab.csv")
    table = validate(reference, settings=load_settings(), order="sorted")
    assert len(table) == int((reference["order"] == "sorted").sum())
    bad = table[table["status"] != "ok"]
    assert bad.empty, bad[["day", "policy", "status"]].to_string()
    migrating = ~table["policy"].isin(["NPA", "DVFS"])
    assert table.loc[migrating, "energy_kwh_rel"].abs().max() <= 0.03
    assert table.loc[migrating, "migrations_rel"].abs().max() <= 0.10
    assert table.loc[migrating, "slatah_rel"].abs().max() <= 0.15
    assert table.loc[migrating, "pdm_rel"].abs().max() <= 0.20
    assert table.loc[~migrating, "energy_kwh_rel"].abs().max() <= 0.01


def test_a_day_folder_never_seen_runs_with_the_same_code(reference_dir, traces_root, tmp_path, monkeypatch):
    """A PlanetLab folder under a new day name (here: 20110306's files as 20991231) validates as is."""
    day = tmp_path / "traces" / "planetlab" / "20991231"
    day.mkdir(parents=True)
    for f in sorted((traces_root / "planetlab" / "20110306").iterdir()):
        (day / f.name).symlink_to(f)
    reference = load_reference(reference_dir / "cloudsim-3.0.3-planetlab.csv")
    rows = reference[(reference["day"] == "20110306") & reference["policy"].isin(["LR-MMT-1.2", "DVFS"])].copy()
    rows = rows[rows["order"] == "sorted"]
    rows["day"] = "20991231"
    monkeypatch.setenv("MIRRORTWIN_TRACES", str(tmp_path / "traces"))
    table = validate(rows, settings=load_settings(), order="sorted")
    assert list(table["status"]) == ["ok", "ok"], table.to_string()
