"""Speed of the twin: the PlanetLab day and scale-20k (issue 2); bitbrains and scale-20k with issue 4's
failures, health signals, failover and request model (``--cases bitbrains,scale-features``).

Each case runs in a fresh subprocess (so peak RSS is that case's alone) ``--repeat`` times; we report
the median wall time of trace loading + simulation (plotting excluded), instance-steps per second and
peak memory. Wall time on these shared machines is noisy, so every figure is also given as a ratio
against baselines measured or recorded for the same machine class:

* ``null`` — the same scenario under the null policy, run in this script: the cost of the twin's
  accounting alone, so ``threshold / null`` is the price of the controller and its migrations;
* for issue 4, ``bitbrains-failures`` against ``bitbrains-rnd`` and scale-20k with failures and requests
  against scale-20k without them, both in the same script;
* CloudSim 3.0.3's wall time for the same day and policy, from ``../shared/reference`` (measured on
  this machine class by the reference runs; it cannot be re-run here, there is no CloudSim build).

Usage: ``.venv/bin/python bench/bench_twin.py [--repeat 3] [--cases planetlab,scale,bitbrains,scale-features]``
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CASE = r"""
import json, resource, sys, time
from mirrortwin.config import load_settings
from mirrortwin.wiring import make_population, make_scenario_policy, resolve_for_policy, seed_streams
from sim.runner import run_scenario
name, policy, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings = load_settings()
t0 = time.perf_counter()
spec = resolve_for_policy(name, policy=policy, overrides=overrides)
pol = make_scenario_policy(spec)
pop_rng, run_rng = seed_streams(spec.seed)
population = make_population(spec, settings, pop_rng)
t1 = time.perf_counter()
result = run_scenario(spec, population, pol, rng=run_rng)
t2 = time.perf_counter()
s = result.summary
print(json.dumps({
    "load_s": t1 - t0, "sim_s": t2 - t1, "total_s": t2 - t0,
    "instances": s["instances"], "steps": s["steps"], "migrations": s["migrations"],
    "energy_kwh": s["energy_kwh"], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

_FEATURES = {  # issue 4: host failures (with health signals and failover) and the request model on
    "failures.enabled": True,
    "failures.mtbf_s": 604_800.0,
    "failures.repair_s": 14_400.0,
    "requests.enabled": True,
}

CASES = {
    "planetlab": [("planetlab-20110303", "threshold", {}), ("planetlab-20110303", "null", {})],
    "scale": [("scale-20k", "threshold", {"rma.snapshot_interval_s": 300.0}), ("scale-20k", "null", {})],
    # issue 4: bitbrains-rnd with mirroring, failures and the LB/request model (target <= 60 s) ...
    "bitbrains": [("bitbrains-failures", "threshold", {}), ("bitbrains-rnd", "threshold", {})],
    # ... and scale-20k with those features vs without them, in the same script (target <= 2x)
    "scale-features": [
        ("scale-20k", "threshold", {"rma.snapshot_interval_s": 300.0, **_FEATURES}),
        ("scale-20k", "threshold", {"rma.snapshot_interval_s": 300.0}),
        # ... and without mirroring either (the strictest reading of "without these features")
        ("scale-20k", "threshold", {"rma.enabled": False}),
    ],
}


def run_case(name: str, policy: str, overrides: dict[str, object]) -> dict[str, float]:
    """Run one case in a fresh interpreter and return its measurements."""
    out = subprocess.run(
        [sys.executable, "-c", _CASE, name, policy, json.dumps(overrides)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"OPENBLAS_NUM_THREADS": "1", **dict(__import__("os").environ)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cloudsim_wall(day: str = "20110303", policy: str = "THR-MMT-0.8") -> list[float]:
    """Wall times CloudSim 3.0.3 needed for ``day`` and ``policy`` in the reference runs."""
    ref = REPO.parent / "shared" / "reference" / "cloudsim-3.0.3-planetlab.csv"
    if not ref.exists():
        return []
    with ref.open() as fh:
        return [float(r["wall_s"]) for r in csv.DictReader(fh) if r["day"] == day and r["policy"] == policy]


def main() -> None:
    """Run the selected cases and print a markdown table of medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="planetlab,scale")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for case in args.cases.split(","):
        for name, policy, overrides in CASES[case]:
            runs = [run_case(name, policy, overrides) for _ in range(args.repeat)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            med["min_total_s"] = min(r["total_s"] for r in runs)
            med["max_total_s"] = max(r["total_s"] for r in runs)
            med["instance_steps_per_s"] = med["instances"] * med["steps"] / med["sim_s"]
            label = name + (" +failures+requests" if overrides.get("failures.enabled") else "")
            label += " (no mirroring)" if overrides.get("rma.enabled") is False else ""
            rows.append({"case": label, "policy": policy, **med})
            print(f"{name} {policy}: {med['total_s']:.2f} s", file=sys.stderr)
    print("| case | policy | load s | sim s | total s (min–max) | instance-steps/s | peak RSS MiB | migrations |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['policy']} | {r['load_s']:.2f} | {r['sim_s']:.2f} | {r['total_s']:.2f} "
            f"({r['min_total_s']:.2f}–{r['max_total_s']:.2f}) | {r['instance_steps_per_s']:,.0f} "
            f"| {r['peak_rss_mib']:.0f} | {r['migrations']:.0f} |"
        )
    by = {(r["case"], r["policy"]): r for r in rows}
    for case in {r["case"] for r in rows}:
        thr, null = by.get((case, "threshold")), by.get((case, "null"))
        if thr and null:
            print(f"\n{case}: threshold / null wall ratio = {thr['total_s'] / null['total_s']:.2f}")
    features, plain = by.get(("scale-20k +failures+requests", "threshold")), by.get(("scale-20k", "threshold"))
    if features and plain:
        print(f"\nscale-20k: with failures + requests / without = {features['total_s'] / plain['total_s']:.2f}")
    bare = by.get(("scale-20k (no mirroring)", "threshold"))
    if features and bare:
        ratio = features["total_s"] / bare["total_s"]
        print(f"scale-20k: with mirroring, failures + requests / with none = {ratio:.2f}")
    thr = by.get(("planetlab-20110303", "threshold"))
    ref = cloudsim_wall()
    if thr and ref:
        print(
            f"planetlab-20110303: CloudSim 3.0.3 THR-MMT-0.8 reference wall {min(ref):.1f}–{max(ref):.1f} s; "
            f"twin is {min(ref) / thr['total_s']:.1f}–{max(ref) / thr['total_s']:.1f}x faster"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
