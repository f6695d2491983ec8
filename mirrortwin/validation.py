"""Side-by-side validation of the twin against CloudSim 3.0.3's PlanetLab consolidation runs.

``mirrortwin validate cloudsim-planetlab`` reads a reference CSV with the columns of
``../shared/reference/cloudsim-3.0.3-planetlab.csv`` (users can pass their own CloudSim runs), runs
the twin on the same day with the matching policy, and tabulates reference, twin and relative
difference for energy, migrations, SLATAH and PDM, with the wall time of each run. A row outside the
tolerances of the validation issue makes the command exit with status 1.

Which twin policy answers which CloudSim policy is decided here, by name: ``THR-MMT-0.8`` is the
registered ``thr-mmt`` policy with ``safety = 0.8``, and so on; NPA (every host always at full
power, no migrations) and DVFS (power follows load, no migrations) are the null policy with idle
hosts kept on or switched off.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mirrortwin.config import Settings
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from sim.runner import run_scenario

REFERENCE_COLUMNS = (
    "day", "order", "policy", "vms", "energy_kwh", "migrations", "slatah", "pdm", "slav", "esv",
    "sla_overall", "host_shutdowns", "wall_s",
)  # fmt: skip
_NUMERIC = ("vms", "energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "sla_overall", "wall_s")

#: Relative tolerances of the validation issue, per metric, for migrating policies.
TOLERANCES: dict[str, float] = {"energy_kwh": 0.03, "migrations": 0.10, "slatah": 0.15, "pdm": 0.20}
#: NPA and DVFS make no migrations: only their energy is compared, within 1 %.
BASELINE_TOLERANCES: dict[str, float] = {"energy_kwh": 0.01}

_POLICY = re.compile(r"^(THR|IQR|MAD|LR|LRR)-(MMT|MC|MU|RS)-(\d+(?:\.\d+)?)$")


class ReferenceError(Exception):
    """The reference CSV cannot be used; ``str()`` names the file, line and column."""


@dataclass(frozen=True)
class TwinPolicy:
    """How the twin runs one CloudSim policy: registered policy name, its params, spec overrides."""

    name: str
    params: dict[str, Any]
    overrides: dict[str, Any]
    tolerances: dict[str, float]


def twin_policy_for(cloudsim_name: str) -> TwinPolicy | None:
    """Map a CloudSim policy name (``LR-MMT-1.2``, ``NPA``, ``DVFS``) to the twin's; None if unknown.

    Every run books as CloudSim does (``accounting = "cloudsim"``). NPA and DVFS are the null policy
    on a first-fit placement, NPA with power management off; the migrating policies are the
    registered consolidation policies with ``cloudsim_quirks`` on and the name's safety parameter.
    """
    base = {"accounting": "cloudsim"}
    if cloudsim_name == "NPA":
        return TwinPolicy(
            "null", {}, {**base, "initial_placement": "first_fit", "power_aware": False}, BASELINE_TOLERANCES
        )
    if cloudsim_name == "DVFS":
        return TwinPolicy("null", {}, {**base, "initial_placement": "first_fit"}, BASELINE_TOLERANCES)
    m = _POLICY.match(cloudsim_name)
    if not m:
        return None
    from policies.registry import available_policies

    name = f"{m.group(1).lower()}-{m.group(2).lower()}"
    if name not in available_policies():
        return None
    params = {"safety": float(m.group(3)), "cloudsim_quirks": True}
    return TwinPolicy(name, params, {**base, "initial_placement": "power_aware_best_fit"}, TOLERANCES)


def load_reference(path: Path) -> pd.DataFrame:
    """Read and check a reference CSV; raise :class:`ReferenceError` naming file, line and column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReferenceError(f"{path}: cannot read the reference CSV ({exc})") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ReferenceError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REFERENCE_COLUMNS)}")
    for col in _NUMERIC:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & (frame[col].str.strip() != "")
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise ReferenceError(f"{path}:{row + 2}: column {col}: not a number: {frame[col].iloc[row]!r}")
        frame[col] = values
    bad_day = ~frame["day"].str.fullmatch(r"\d{8}")
    if bad_day.any():
        row = int(bad_day.to_numpy().nonzero()[0][0])
        raise ReferenceError(f"{path}:{row + 2}: column day: expected YYYYMMDD, got {frame['day'].iloc[row]!r}")
    return frame


def _rel(twin: float, ref: float) -> float:
    if ref == 0:
        return 0.0 if twin == 0 else math.inf
    return (twin - ref) / abs(ref)


def validate(
    reference: pd.DataFrame,
    *,
    settings: Settings,
    days: Sequence[str] | None = None,
    policies: Sequence[str] | None = None,
    order: str = "sorted",
    maps: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Run the twin for every selected reference row and return the side-by-side table.

    Rows whose policy the twin does not implement are reported with ``status = "unsupported"``.
    The population of a day is built once and shared by all its policies (same seed, same demand).
    ``order = "sorted"`` gives VM *i* the *i*-th trace file by name, as the reference's portable
    rows do; any other order needs ``maps/map_<day>_<order>.csv`` (``vm_id,trace_file,...``, as in
    ``../shared/reference/cloudsim-20110303-steps/``), which lists the file each VM replayed.
    """
    rows = reference[reference["order"] == order]
    if days:
        rows = rows[rows["day"].isin(days)]
    if policies:
        rows = rows[rows["policy"].isin(policies)]
    table: list[dict[str, Any]] = []
    populations: dict[str, Any] = {}
    for ref in rows.to_dict("records"):
        twin = twin_policy_for(ref["policy"])
        out: dict[str, Any] = {"day": ref["day"], "policy": ref["policy"], "reference_wall_s": ref["wall_s"]}
        if twin is None:
            out["status"] = "unsupported"
            table.append(out)
            continue
        overrides = {**twin.overrides, **{f"controller.params.{k}": v for k, v in twin.params.items()}}
        if order != "sorted":
            vm_map = (maps or Path(".")) / f"map_{ref['day']}_{order}.csv"
            if not vm_map.is_file():
                out["status"] = f"no VM map {vm_map}"
                table.append(out)
                continue
            overrides.update({"workload.mapping": "listed", "workload.series_file": str(vm_map)})
        spec = resolve_for_policy(f"planetlab-{ref['day']}", policy=twin.name, overrides=overrides)
        pop_rng, run_rng = seed_streams(spec.seed)
        if ref["day"] not in populations:
            populations[ref["day"]] = make_population(spec, settings, pop_rng)
        population = populations[ref["day"]]
        if population.n_instances != int(ref["vms"]):
            out["status"] = f"day has {population.n_instances} VMs, reference {int(ref['vms'])}"
            table.append(out)
            continue
        t0 = time.perf_counter()
        result = run_scenario(spec, population, make_scenario_policy(spec), rng=run_rng)
        out["twin_wall_s"] = time.perf_counter() - t0
        within = True
        for metric in ("energy_kwh", "migrations", "slatah", "pdm"):
            t_val, r_val = float(result.summary[metric]), float(ref[metric])
            out[f"{metric}_ref"], out[f"{metric}_twin"] = r_val, t_val
            out[f"{metric}_rel"] = _rel(t_val, r_val)
            if metric in twin.tolerances:
                within &= abs(out[f"{metric}_rel"]) <= twin.tolerances[metric]
        out["status"] = "ok" if within else "outside tolerance"
        table.append(out)
        if on_row is not None:
            on_row(out)
    return pd.DataFrame(table)


def to_markdown(table: pd.DataFrame) -> str:
    """Render the side-by-side table as markdown (reference / twin / relative difference)."""
    head = (
        "| day | policy | energy kWh ref / twin (diff) | migrations ref / twin (diff) | SLATAH ref / twin (diff) "
        "| PDM ref / twin (diff) | wall s ref / twin | status |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in table.to_dict("records"):
        if not isinstance(r.get("energy_kwh_twin"), float) or math.isnan(r["energy_kwh_twin"]):
            lines.append(f"| {r['day']} | {r['policy']} | | | | | {r['reference_wall_s']:.1f} / – | {r['status']} |")
            continue

        def cell(m: str, fmt: str, r: dict[str, Any] = r) -> str:
            return f"{r[m + '_ref']:{fmt}} / {r[m + '_twin']:{fmt}} ({r[m + '_rel']:+.1%})"

        lines.append(
            f"| {r['day']} | {r['policy']} | {cell('energy_kwh', '.2f')} | {cell('migrations', '.0f')} "
            f"| {cell('slatah', '.4f')} | {cell('pdm', '.6f')} | {r['reference_wall_s']:.1f} / {r['twin_wall_s']:.2f} "
            f"| {r['status']} |"
        )
    return head + "\n".join(lines) + "\n" + _worst(table)


def _worst(table: pd.DataFrame) -> str:
    """One line per metric: the largest relative difference over the rows that compare it."""
    if "energy_kwh_rel" not in table.columns:
        return ""
    out = ["", "| metric | rows | largest difference | tolerance |", "|---|---|---|---|"]
    baseline = table["policy"].isin(["NPA", "DVFS"])
    for metric, tol in TOLERANCES.items():
        rows = table[~baseline][f"{metric}_rel"].dropna()
        if len(rows):
            out.append(f"| {metric} (migrating policies) | {len(rows)} | {rows.abs().max():.4%} | {tol:.0%} |")
    base = table[baseline]["energy_kwh_rel"].dropna()
    if len(base):
        tol = BASELINE_TOLERANCES["energy_kwh"]
        out.append(f"| energy_kwh (NPA, DVFS) | {len(base)} | {base.abs().max():.4%} | {tol:.0%} |")
    return "\n".join(out) + "\n"
