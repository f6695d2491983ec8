from __future__ import annotations

import pandas as pd
import pytest

from mirrortwin.cli import main
from mirrortwin.config import load_settings
from mirrortwin.validation import REFERENCE_COLUMNS, ReferenceError, load_reference, twin_policy_for

ROW = {
    "day": "20110303", "order": "sorted", "policy": "DVFS", "vms": "1052", "energy_kwh": "802.754",
    "migrations": "0", "slatah": "0", "pdm": "0", "slav": "0", "esv": "0", "sla_overall": "0",
    "host_shutdowns": "0", "wall_s": "1.9",
}  # fmt: skip


def _write(tmp_path, rows):
    path = tmp_path / "ref.csv"
    pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS)).to_csv(path, index=False)
    return path


def test_policy_names_map_to_registered_twin_policies():
    lr = twin_policy_for("LR-MMT-1.2")
    assert lr.name == "lr-mmt"
    assert lr.params == {"safety": 1.2, "cloudsim_quirks": True}
    assert lr.overrides["accounting"] == "cloudsim"
    assert twin_policy_for("IQR-MC-1.5").name == "iqr-mc"
    npa = twin_policy_for("NPA")
    assert npa.name == "null" and npa.overrides["power_aware"] is False
    assert npa.overrides["initial_placement"] == "first_fit"
    assert twin_policy_for("DVFS").overrides == {"accounting": "cloudsim", "initial_placement": "first_fit"}
    assert twin_policy_for("DVFS").tolerances == {"energy_kwh": 0.01}
    assert twin_policy_for("LR-RS-1.2").name == "lr-rs"  # every detector x selection is registered
    assert twin_policy_for("LR-XX-1.2") is None  # no such selection rule
    assert twin_policy_for("nonsense") is None


def test_missing_column_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("day,policy\n20110303,DVFS\n")
    with pytest.raises(ReferenceError) as info:
        load_reference(path)
    assert str(path) in str(info.value) and "missing column" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_number_names_line_and_column(tmp_path):
    path = _write(tmp_path, [ROW, {**ROW, "energy_kwh": "lots"}])
    with pytest.raises(ReferenceError) as info:
        load_reference(path)
    assert f"{path}:3: column energy_kwh" in str(info.value)


def test_validate_runs_the_twin_and_exits_by_tolerance(tmp_path, traces_root, capsys):
    settings = load_settings()
    # CloudSim's own DVFS row: the twin books like CloudSim and lands on it, so exit 0 ...
    path = _write(tmp_path, [ROW])
    out = tmp_path / "out"
    args = ["validate", "cloudsim-planetlab", "--out", str(out), "--reference"]
    assert main([*args, str(path)], settings=settings) == 0
    table = pd.read_csv(out / "validation.csv", keep_default_na=False)
    twin_energy = float(table.loc[0, "energy_kwh_twin"])
    assert abs(table.loc[0, "energy_kwh_rel"] - (twin_energy - 802.754) / 802.754) < 1e-9
    assert abs(table.loc[0, "energy_kwh_rel"]) < 1e-5
    assert "| 20110303 | DVFS |" in (out / "validation.md").read_text()
    # ... and a reference 2 % away from it (tolerance 1 %) fails with exit 1
    off = _write(tmp_path, [{**ROW, "energy_kwh": str(twin_energy * 1.02)}])
    assert main([*args, str(off)], settings=settings) == 1
    assert "outside tolerance" in (out / "validation.md").read_text()


def test_bad_reference_reaches_the_user_as_one_line(tmp_path, capsys):
    path = tmp_path / "ref.csv"
    path.write_text("day\n")
    assert main(["validate", "cloudsim-planetlab", "--reference", str(path)], settings=load_settings()) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mirrortwin: error:") and "\n" not in err
