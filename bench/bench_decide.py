"""Speed of ``ThresholdPolicy.decide()`` with consolidation: compiled kernels vs the numpy path before them.

Fleets come from the real PlanetLab day (``$MIRRORTWIN_TRACES/planetlab/20110303``, files in sorted
order, one VM per file) with CloudSim 3.0.3's host and VM types (reference §1.1) and the twin's
initial power-aware spread placement (:func:`sim.placement.power_aware_initial_placement`). Each
tick sets every VM's request to ``u(t) x VM MIPS`` and its last 30 samples as history, calls
``decide()`` (timed alone), and applies the plan, so later ticks see the consolidated fleet.

Two cases: ``planetlab`` (800 hosts, 1052 VMs) and ``scale`` (2,000 12-PE hosts in 4 IVNs, 20,000 VMs
cycling through the same traces: the ``scale-20k`` shape). Old and new each run in a fresh
interpreter on the same inputs: "old" imports ``policies`` from a git worktree of the commit before
the kernels (``--old``, created with ``git worktree add --detach /tmp/mirrortwin-old <commit>``), "new"
from this checkout. Both must produce the same plans at every tick (compared by digest). Only the
ratio means much on a shared machine.

``--jit`` also times the first ``decide()`` of a fresh interpreter with an empty numba cache (cold:
compilation) and with the cache this checkout already holds (warm: loading it).

Usage: ``.venv/bin/python bench/bench_decide.py [--old /tmp/mirrortwin-old] [--cases planetlab,scale]
[--ticks 288] [--scale-ticks 72] [--jit]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MB = 1e6
HISTORY = 30

# CloudSim 3.0.3 PlanetLab setup (reference §1.1, §1.4).
G4 = (2, 1860.0, (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0))
G5 = (2, 2660.0, (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0))
X3550 = (12, 3067.0, (58.4, 98.0, 109.0, 118.0, 128.0, 140.0, 153.0, 170.0, 189.0, 205.0, 222.0))
VM_MIPS = np.array([2500.0, 2000.0, 1000.0, 500.0])
VM_RAM_MB = np.array([870.0, 1740.0, 1740.0, 613.0])

# Runs in a fresh interpreter with ``policies`` importable from argv[1]; times decide() per tick.
_CHILD = r"""
import hashlib, json, sys, time
root, inputs, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, root)
import numpy as np
from policies.fleet import FleetSnapshot
from policies.threshold_policy import ThresholdPolicy
d = dict(np.load(inputs))
n_hosts, n_inst = d["host_ivn"].size, d["vm_mips"].size
ivn_names = tuple(f"ivn-{k}" for k in range(int(d["host_ivn"].max()) + 1))
host_ids = tuple(f"host-{h}" for h in range(n_hosts))
host_index = {h: i for i, h in enumerate(host_ids)}
inst_ids = tuple(f"vm-{i}" for i in range(n_inst))
inst_index = {v: i for i, v in enumerate(inst_ids)}
util, hist_len = d["util"], params["history"]
inst_host = d["placement"].copy()

def fleet(t):
    hist = np.full((n_inst, hist_len), np.nan)
    window = util[:, max(0, t - hist_len + 1) : t + 1]
    hist[:, hist_len - window.shape[1]:] = window
    return FleetSnapshot(
        now_s=300.0 * t, ivn_names=ivn_names, host_ids=host_ids, host_ivn=d["host_ivn"],
        host_cpu_capacity_mips=d["host_cap"], host_pe_mips=d["host_pe_mips"], host_ram_bytes=d["host_ram"],
        host_power_w=d["host_power"], host_available=np.ones(n_hosts, dtype=np.bool_), instance_ids=inst_ids,
        instance_host=inst_host.copy(), instance_cpu_capacity_mips=d["vm_mips"],
        instance_cpu_request_mips=util[:, t] * d["vm_mips"], instance_ram_bytes=d["vm_ram"],
        instance_in_migration=np.zeros(n_inst, dtype=np.bool_), instance_cpu_history=hist,
        instance_pes=np.ones(n_inst, dtype=np.int64), host_pes=d["host_pes"],
    )

policy = ThresholdPolicy(threshold=params["threshold"], underload_threshold=params["underload"])
t0 = time.perf_counter()
policy.decide(fleet(0))  # warm-up: numba cache load for the kernels, first-touch for numpy
first_s = time.perf_counter() - t0
digest, times, n_moves = hashlib.sha256(), [], 0
for t in range(params["ticks"]):
    f = fleet(t)
    t0 = time.perf_counter()
    plan = policy.decide(f)
    times.append(time.perf_counter() - t0)
    for m in plan.moves:
        inst_host[inst_index[m.instance_id]] = host_index[m.target_host]
        digest.update(f"{t} {m.instance_id} {m.target_host} {m.reason.value};".encode())
    n_moves += len(plan.moves)
print(json.dumps({"times": times, "first_s": first_s, "moves": n_moves, "digest": digest.hexdigest()}))
"""

_JIT_PROBE = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
from policies.fleet import FleetSnapshot
from policies.threshold_policy import ThresholdPolicy
t1 = time.perf_counter()
fleet = FleetSnapshot(
    now_s=0.0, ivn_names=("a",), host_ids=("h0", "h1"), host_ivn=np.zeros(2, np.int64),
    host_cpu_capacity_mips=np.full(2, 1000.0), host_pe_mips=np.full(2, 1000.0), host_ram_bytes=np.full(2, 1e10),
    host_power_w=np.tile(np.linspace(100.0, 200.0, 11), (2, 1)), host_available=np.ones(2, np.bool_),
    instance_ids=("i0", "i1"), instance_host=np.array([0, 0]), instance_cpu_capacity_mips=np.full(2, 1000.0),
    instance_cpu_request_mips=np.array([500.0, 400.0]), instance_ram_bytes=np.array([2e9, 1e9]),
    instance_in_migration=np.zeros(2, np.bool_), instance_cpu_history=np.full((2, 1), 0.5),
)
ThresholdPolicy(underload_threshold=1.0).decide(fleet)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def planetlab_util(day: str = "20110303") -> np.ndarray:
    """Utilisation (fraction) of every trace file of ``day`` in sorted order, shape (files, 288)."""
    traces = Path(os.environ.get("MIRRORTWIN_TRACES", REPO.parent / "shared" / "traces"))
    folder = traces / "planetlab" / day
    if not folder.is_dir():
        sys.exit(f"bench_decide: PlanetLab traces not found at {folder} (set MIRRORTWIN_TRACES)")
    return np.array([np.loadtxt(p, dtype=np.float64) / 100.0 for p in sorted(folder.iterdir())])


def build_case(case: str, util_all: np.ndarray) -> dict[str, np.ndarray]:
    """Host and VM arrays plus the initial spread placement of one case."""
    from sim.placement import power_aware_initial_placement

    if case == "planetlab":
        n_inst, host_types, host_ivn = util_all.shape[0], [G4, G5] * 400, np.zeros(800, dtype=np.int64)
        util = util_all
    else:
        n_inst, host_types = 20_000, [X3550] * 2000
        host_ivn = np.repeat(np.arange(4, dtype=np.int64), 500)
        util = util_all[np.arange(n_inst) % util_all.shape[0]]
    vm_type = np.arange(n_inst) // math.ceil(n_inst / 4)  # Helper.createVmList: four contiguous blocks
    vm_mips, vm_ram = VM_MIPS[vm_type], VM_RAM_MB[vm_type] * MB
    host_pes = np.array([t[0] for t in host_types], dtype=np.int64)
    host_pe_mips = np.array([t[1] for t in host_types])
    host_power = np.array([t[2] for t in host_types])
    host_ram = np.full(len(host_types), 4096.0 * MB if case == "planetlab" else 64_000.0 * MB)
    inst_ivn = np.zeros(n_inst, dtype=np.int64) if case == "planetlab" else np.arange(n_inst, dtype=np.int64) % 4
    placement = power_aware_initial_placement(
        instance_mips=vm_mips,
        instance_ram=vm_ram,
        instance_ivn=inst_ivn,
        instance_ids=tuple(f"vm-{i}" for i in range(n_inst)),
        instance_pes=np.ones(n_inst, dtype=np.int64),
        host_pes=host_pes,
        host_ivn=host_ivn,
        host_cap_mips=host_pes * host_pe_mips,
        host_pe_mips=host_pe_mips,
        host_ram=host_ram,
        host_power_w=host_power,
    )
    return {
        "host_ivn": host_ivn,
        "host_cap": host_pes * host_pe_mips,
        "host_pe_mips": host_pe_mips,
        "host_pes": host_pes,
        "host_ram": host_ram,
        "host_power": host_power,
        "vm_mips": vm_mips,
        "vm_ram": vm_ram,
        "util": np.ascontiguousarray(util),
        "placement": placement,
    }


def run_child(root: Path, inputs: Path, params: dict[str, object]) -> dict[str, object]:
    """Time ``decide()`` over the ticks in a fresh interpreter importing ``policies`` from ``root``."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(inputs), json.dumps(params)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    if out.returncode != 0:
        sys.exit(f"bench_decide: run in {root} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def jit_times() -> tuple[tuple[float, float], tuple[float, float]]:
    """(import s, first decide s) of a fresh interpreter, with an empty numba cache and with this one's."""
    results = []
    with tempfile.TemporaryDirectory() as empty:
        for cache in (empty, None):
            env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
            if cache is not None:
                env["NUMBA_CACHE_DIR"] = cache
            out = subprocess.run(
                [sys.executable, "-c", _JIT_PROBE], cwd=REPO, capture_output=True, text=True, env=env, check=True
            )
            imp, first = (float(x) for x in out.stdout.split())
            results.append((imp, first))
    return results[0], results[1]


def main() -> None:
    """Run the selected cases old vs new and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=Path("/tmp/mirrortwin-old"), help="worktree of the old commit")
    parser.add_argument("--cases", default="planetlab,scale")
    parser.add_argument("--ticks", type=int, default=288, help="ticks of the planetlab case (288 = the day)")
    parser.add_argument("--scale-ticks", type=int, default=72, help="ticks of the scale case")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--underload", type=float, default=1.0, help="CloudSim: every host with 0 < u < 1")
    parser.add_argument("--jit", action="store_true", help="also time cold (empty cache) and warm first calls")
    args = parser.parse_args()
    if not (args.old / "policies" / "threshold_policy.py").exists():
        sys.exit(f"bench_decide: no old checkout at {args.old}; create it with `git worktree add --detach`")
    sys.path.insert(0, str(REPO))
    util_all = planetlab_util()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            inputs = Path(tmp) / f"{case}.npz"
            data = build_case(case, util_all)
            np.savez(inputs, **data)  # type: ignore[arg-type]
            ticks = args.ticks if case == "planetlab" else args.scale_ticks
            params = {"ticks": ticks, "threshold": args.threshold, "underload": args.underload, "history": HISTORY}
            old = run_child(args.old, inputs, params)
            new = run_child(REPO, inputs, params)
            old_ms, new_ms = 1e3 * np.array(old["times"]), 1e3 * np.array(new["times"])
            rows.append(
                f"| {case} | {data['host_ivn'].size} | {data['vm_mips'].size} | {ticks} "
                f"| {int(new['moves']) / ticks:.1f} | {old_ms.mean():.2f} | {new_ms.mean():.3f} "
                f"| {np.median(old_ms):.2f} | {np.median(new_ms):.3f} | {old_ms.sum() / new_ms.sum():.1f}x "
                f"| {old_ms.sum() / 1e3:.2f} / {new_ms.sum() / 1e3:.3f} "
                f"| {'yes' if old['digest'] == new['digest'] else 'NO'} |"
            )
    print(
        f"decide() with consolidation (threshold {args.threshold}, underload {args.underload}); "
        "old = numpy path, new = numba kernels\n"
    )
    print(
        "| case | hosts | VMs | ticks | moves/tick | old ms/tick (mean) | new ms/tick (mean) "
        "| old median | new median | speed-up | total s old / new | same plans |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.jit:
        (cold_imp, cold_first), (warm_imp, warm_first) = jit_times()
        print("\n| first decide() in a fresh interpreter | import s | first call s |\n|---|---|---|")
        print(f"| cold (empty numba cache: compile) | {cold_imp:.2f} | {cold_first:.2f} |")
        print(f"| warm (cache on disk: load) | {warm_imp:.2f} | {warm_first:.2f} |")


if __name__ == "__main__":
    main()
