"""Building populations: series mapping, types, IVNs, coverage, determinism and one-line errors.

Most tests replace the trace loader with a small synthetic :class:`TraceSet` so the mapping rules are
checked exactly and fast; the tests marked ``traces`` run the real catalogue scenarios.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from scenarios import workload
from scenarios.catalogue import CATALOGUE_DIR, resolve_scenario
from scenarios.population import InstancePopulation
from scenarios.spec import MB, Scenario, ScenarioError
from scenarios.traces import TraceSet
from scenarios.workload import build_population

N_SERIES = 80
N_STEPS = 288


def _fake_trace(
    n: int = N_SERIES, steps: int = N_STEPS, step_s: float = 300.0, name: str = "planetlab/fake"
) -> TraceSet:
    gen = np.random.default_rng(1234)
    return TraceSet(
        name=name,
        instance_ids=tuple(f"s{i:03d}" for i in range(n)),
        step_s=step_s,
        # row i holds i + step/1000, so every value says which series and step it came from
        cpu_util=(np.arange(n)[:, None] + np.arange(steps)[None, :] / 1000).astype(np.float32),
        mem_util=gen.random((n, steps), dtype=np.float32),
        cpu_capacity_mhz=np.linspace(1000.0, 4000.0, n),
        mem_capacity_bytes=np.linspace(1e9, 4e9, n),
    )


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[tuple[str, str | None, float | None]]]:
    """Serve synthetic traces instead of files; returns a function that installs one and logs calls."""

    def install(trace: TraceSet | None = None, **by_subset: TraceSet) -> list[tuple[str, str | None, float | None]]:
        calls: list[tuple[str, str | None, float | None]] = []

        def load(
            family: str, subset: str | None, roots: Sequence[Path], *, step_s: float | None = None, cache_dir=None
        ) -> TraceSet:
            calls.append((family, subset, step_s))
            return by_subset.get(subset or "", trace or _fake_trace())

        monkeypatch.setattr(workload, "load_trace", load)
        return calls

    return install


def _smoke(**overrides: object) -> Scenario:
    return resolve_scenario("smoke", overrides)


def _build(scenario: Scenario, seed: int = 0) -> InstancePopulation:
    return build_population(scenario, [Path("/nonexistent")], rng=np.random.default_rng(seed))


def _assert_same(a: InstancePopulation, b: InstancePopulation) -> None:
    assert a.instance_ids == b.instance_ids and a.trace_ids == b.trace_ids and a.type_names == b.type_names
    for field in ("mips", "ram_bytes", "state_bytes", "ivn_index"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for metric in a.demand.metrics():
        np.testing.assert_array_equal(getattr(a.demand, metric), getattr(b.demand, metric))


def test_sorted_mapping_replays_series_i_as_instance_i(fake_loader) -> None:
    calls = fake_loader()
    pop = _build(_smoke(**{"workload.instances": 20}))
    assert calls == [("planetlab", "20110303", 300.0)]
    assert pop.instance_ids[:2] == ("vm-00000", "vm-00001")
    assert pop.trace_ids == tuple(f"s{i:03d}" for i in range(20))
    assert pop.demand.cpu_util.shape == (20, 72)  # 6 h at 300 s
    np.testing.assert_allclose(pop.demand.cpu_util[7, :3], [7.0, 7.001, 7.002], rtol=1e-6)


def test_start_offset_skips_the_start_of_the_trace(fake_loader) -> None:
    fake_loader()
    pop = _build(_smoke(start_offset_s=3000.0))
    np.testing.assert_allclose(pop.demand.cpu_util[0, 0], 0.010, rtol=1e-5)


def test_random_mapping_is_a_seeded_permutation(fake_loader) -> None:
    fake_loader()
    a = _build(_smoke(**{"workload.mapping": "random", "workload.instances": N_SERIES}), seed=3)
    b = _build(_smoke(**{"workload.mapping": "random", "workload.instances": N_SERIES}), seed=3)
    _assert_same(a, b)
    assert sorted(a.trace_ids) == [f"s{i:03d}" for i in range(N_SERIES)]
    assert list(a.trace_ids) != sorted(a.trace_ids)


def test_sample_mapping_is_deterministic_per_seed_and_differs_across_seeds(fake_loader) -> None:
    fake_loader()
    scenario = _smoke(**{"workload.mapping": "sample", "workload.instances": 500, "workload.type_assignment": "random"})
    a, b, c = _build(scenario, seed=7), _build(scenario, seed=7), _build(scenario, seed=8)
    _assert_same(a, b)
    assert a.trace_ids != c.trace_ids
    assert a.type_names != c.type_names
    assert len(set(a.trace_ids)) < 500  # drawn with replacement
    # each row is its series rotated by a whole number of steps, wrapping at the end of the trace
    row = a.demand.cpu_util[0]
    series = int(a.trace_ids[0][1:])
    shift = round((float(row[0]) - series) * 1000)
    expected = series + ((shift + np.arange(72)) % N_STEPS) / 1000
    np.testing.assert_allclose(row, expected, rtol=1e-6)
    assert a.demand.start_offsets_s is not None


def test_sample_covers_durations_longer_than_the_trace(fake_loader) -> None:
    fake_loader()
    pop = _build(_smoke(duration_s=3 * 86_400.0, **{"workload.mapping": "sample"}))
    assert pop.demand.n_steps == 3 * N_STEPS


def test_too_short_trace_names_duration_s(fake_loader) -> None:
    fake_loader()
    with pytest.raises(ScenarioError) as info:
        _build(_smoke(duration_s=2 * 86_400.0))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{CATALOGUE_DIR / 'smoke.toml'}:")
    assert ": duration_s: the run needs 576 steps" in message and "mapping = 'sample'" in message


def test_more_instances_than_series_names_workload_instances(fake_loader) -> None:
    fake_loader()
    with pytest.raises(ScenarioError, match=r"workload\.instances: 81 instances but trace planetlab/fake has only 80"):
        _build(_smoke(**{"workload.instances": 81}))


def test_default_instance_count_is_one_per_series(fake_loader) -> None:
    fake_loader()
    smoke = (CATALOGUE_DIR / "smoke.toml").read_text(encoding="utf-8").replace("instances = 60\n", "")
    assert _build(Scenario.model_validate(tomllib.loads(smoke))).n_instances == N_SERIES


def test_blocks_assignment_matches_cloudsim_for_1052_vms(fake_loader) -> None:
    fake_loader(_fake_trace(n=1052))
    pop = _build(resolve_scenario("planetlab-20110303"))
    assert Counter(pop.type_names) == {"t0": 263, "t1": 263, "t2": 263, "t3": 263}
    names = np.asarray(pop.type_names)
    for k, (first, last) in enumerate([(0, 262), (263, 525), (526, 788), (789, 1051)]):
        assert set(names[first : last + 1]) == {f"t{k}"}
    assert (pop.mips[0], pop.ram_bytes[0], pop.state_bytes[0]) == (2500.0, 870 * MB, 870 * MB)
    assert (pop.mips[-1], pop.ram_bytes[-1]) == (500.0, 613 * MB)


def test_round_robin_and_state_mb(fake_loader) -> None:
    fake_loader()
    pop = _build(_smoke(**{"workload.instance_types.1.state_mb": 100.0}))
    assert pop.type_names[:5] == ("t0", "t1", "t2", "t3", "t0")
    assert pop.state_bytes[1] == 100 * MB and pop.ram_bytes[1] == 1740 * MB


def test_from_trace_takes_sizes_from_provisioned_capacity(fake_loader) -> None:
    fake_loader()
    pop = _build(_smoke(**{"workload.type_assignment": "from_trace", "workload.instance_types": []}))
    np.testing.assert_allclose(pop.mips[:3], np.linspace(1000.0, 4000.0, N_SERIES)[:3])
    np.testing.assert_array_equal(pop.state_bytes, pop.ram_bytes)
    assert pop.type_names[0] == "trace-1000mips-1000mb"


def test_from_trace_instance_larger_than_every_host_names_host_types(fake_loader) -> None:
    fake_loader()
    with pytest.raises(ScenarioError) as info:
        _build(
            _smoke(
                **{
                    "workload.type_assignment": "from_trace",
                    "workload.instance_types": [],
                    "workload.instances": 80,
                    "topology.host_types.1.ram_mb": 2048.0,
                    "topology.host_types.0.ram_mb": 2048.0,
                }
            )
        )
    smoke = (CATALOGUE_DIR / "smoke.toml").read_text().splitlines()
    line = smoke.index("[[topology.host_types]]") + 1
    assert str(info.value).startswith(
        f"{CATALOGUE_DIR / 'smoke.toml'}:{line}: topology.host_types: instance type trace-"
    )


def test_from_trace_without_capacities_names_the_field(fake_loader) -> None:
    trace = _fake_trace()
    fake_loader(TraceSet(name=trace.name, instance_ids=trace.instance_ids, step_s=300.0, cpu_util=trace.cpu_util))
    with pytest.raises(ScenarioError, match=r"workload\.type_assignment: trace planetlab/fake states no"):
        _build(_smoke(**{"workload.type_assignment": "from_trace", "workload.instance_types": []}))


def test_instance_larger_than_every_host_is_refused(fake_loader) -> None:
    fake_loader()
    with pytest.raises(ScenarioError) as info:
        _build(_smoke(**{"workload.instance_types.0.ram_mb": 5000.0}))
    assert "workload.instance_types: instance type t0" in str(info.value)
    assert "fits on no host type" in str(info.value)


def test_required_metric_missing_is_named(fake_loader) -> None:
    fake_loader()
    with pytest.raises(ScenarioError, match=r"workload\.require_metrics: trace planetlab/fake has no net_rx_bps"):
        _build(_smoke(**{"workload.require_metrics": ["cpu_util", "net_rx_bps"]}))


def test_instances_spread_over_ivns_in_order_by_host_count(fake_loader) -> None:
    fake_loader()
    pop = _build(_smoke(**{"workload.ivns": ["ivn-a", "ivn-b"], "workload.instances": 50}))
    # ivn-a has 32 hosts and ivn-b 8: 40 then 10 instances
    np.testing.assert_array_equal(pop.ivn_index, [0] * 40 + [1] * 10)
    only_b = _build(_smoke(**{"workload.ivns": ["ivn-b"]}))
    assert set(only_b.ivn_index.tolist()) == {1}


def test_trace_on_another_step_is_put_on_the_scenario_step(fake_loader) -> None:
    fake_loader(_fake_trace(steps=4 * N_STEPS, step_s=75.0))
    pop = _build(_smoke(**{"workload.step_s": 75.0}))
    assert pop.demand.step_s == 300.0 and pop.demand.n_steps == 72
    np.testing.assert_allclose(pop.demand.cpu_util[2, 0], 2.0015, rtol=1e-5)  # mean of 4 samples


def test_several_subsets_are_pooled(fake_loader) -> None:
    calls = fake_loader(d1=_fake_trace(n=3, name="planetlab/d1"), d2=_fake_trace(n=4, name="planetlab/d2"))
    pop = _build(_smoke(**{"workload.subset": ["d1", "d2"], "workload.instances": 7}))
    assert [c[1] for c in calls] == ["d1", "d2"]
    assert pop.trace_ids[:4] == ("d1/s000", "d1/s001", "d1/s002", "d2/s000")
    assert pop.demand.name == "planetlab/d1+d2"


def test_missing_trace_day_is_one_line_with_what_to_download(tmp_path: Path) -> None:
    scenario = resolve_scenario("planetlab-20110304")
    with pytest.raises(ScenarioError) as info:
        build_population(scenario, [tmp_path], rng=np.random.default_rng(0))
    message = str(info.value)
    template = CATALOGUE_DIR / "planetlab-20110303.toml"
    line = next(i for i, t in enumerate(template.read_text().splitlines(), 1) if t.startswith("subset"))
    assert "\n" not in message
    assert message.startswith(f"{template}:{line}: workload.subset: ")
    assert "20110304" in message and "download" in message


def test_missing_family_names_workload_trace(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        build_population(resolve_scenario("bitbrains-rnd"), [tmp_path], rng=np.random.default_rng(0))
    assert ": workload.trace: " in str(info.value) and "\n" not in str(info.value)


@pytest.mark.traces
def test_planetlab_20110306_has_898_instances_in_cloudsim_blocks(traces_root: Path) -> None:
    pop = build_population(resolve_scenario("planetlab-20110306"), [traces_root], rng=np.random.default_rng(0))
    assert pop.n_instances == 898
    assert list(pop.trace_ids) == sorted(p.name for p in (traces_root / "planetlab" / "20110306").iterdir())
    assert Counter(pop.type_names) == {"t0": 225, "t1": 225, "t2": 225, "t3": 223}
    assert pop.demand.cpu_util.shape == (898, 288)


@pytest.mark.traces
def test_planetlab_20110303_block_types(traces_root: Path) -> None:
    pop = build_population(resolve_scenario("planetlab-20110303"), [traces_root], rng=np.random.default_rng(0))
    names = np.asarray(pop.type_names)
    assert pop.n_instances == 1052
    assert set(names[:263]) == {"t0"} and names[263] == "t1" and names[788] == "t2" and names[789] == "t3"


@pytest.mark.traces
def test_smoke_and_scale_build_from_real_traces(traces_root: Path) -> None:
    smoke = build_population(resolve_scenario("smoke"), [traces_root], rng=np.random.default_rng(0))
    assert (smoke.n_instances, smoke.demand.n_steps) == (60, 72)
    scale = build_population(resolve_scenario("scale-20k"), [traces_root], rng=np.random.default_rng(0))
    assert scale.n_instances == 20_000
    assert np.bincount(scale.ivn_index).tolist() == [5000] * 4
    assert scale.demand.cpu_util.shape == (20_000, 288)


@pytest.mark.traces
@pytest.mark.slow
def test_bitbrains_builds_with_every_metric_and_trace_sizes(traces_root: Path, tmp_path: Path) -> None:
    scenario = resolve_scenario("bitbrains-rnd")
    pop = build_population(scenario, [traces_root], rng=np.random.default_rng(0), cache_dir=tmp_path)
    assert pop.n_instances == 400 and pop.demand.n_steps == scenario.n_steps == 8640
    assert len(pop.demand.metrics()) == 6
    assert (pop.mips > 0).all() and (pop.ram_bytes > 0).all()
    assert set(pop.ivn_index.tolist()) == {0}
