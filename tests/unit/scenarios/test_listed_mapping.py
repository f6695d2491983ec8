"""workload.mapping = "listed" (series_file), its one-line errors, and first-fit initial placement."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenarios import workload
from scenarios.catalogue import resolve_scenario
from scenarios.population import InstancePopulation
from scenarios.spec import Scenario, ScenarioError
from scenarios.traces import TraceSet
from scenarios.workload import build_population
from sim.placement import PlacementError, first_fit_initial_placement, initial_placement

N_SERIES = 10


def _trace() -> TraceSet:
    # row i holds i + step / 1000, so a value says which series it came from
    return TraceSet(
        name="planetlab/fake",
        instance_ids=tuple(f"s{i:03d}" for i in range(N_SERIES)),
        step_s=300.0,
        cpu_util=(np.arange(N_SERIES)[:, None] + np.arange(288)[None, :] / 1000).astype(np.float32),
    )


@pytest.fixture(autouse=True)
def _fake_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(
        family: str, subset: str | None, roots: Sequence[Path], *, step_s: float | None = None, cache_dir: Any = None
    ) -> TraceSet:
        return _trace()

    monkeypatch.setattr(workload, "load_trace", load)


def _listed(series_file: Path | str, **more: object) -> Scenario:
    return resolve_scenario("smoke", {"workload.mapping": "listed", "workload.series_file": str(series_file), **more})


def _build(scenario: Scenario) -> InstancePopulation:
    return build_population(scenario, [Path("/nonexistent")], rng=np.random.default_rng(0))


def test_a_csv_with_a_trace_file_column_orders_the_population(tmp_path: Path) -> None:
    listing = tmp_path / "order.csv"
    listing.write_text("vm,trace_file,mips\n0,s007,2500\n1,s002,2000\n2,s009,1000\n\n3,s000,500\n")
    pop = _build(_listed(listing, **{"workload.instances": None}))
    assert pop.trace_ids == ("s007", "s002", "s009", "s000")
    np.testing.assert_allclose(pop.demand.cpu_util[:, 0], [7.0, 2.0, 9.0, 0.0])
    np.testing.assert_allclose(pop.demand.cpu_util[2, :3], [9.0, 9.001, 9.002], rtol=1e-6)


def test_a_plain_list_of_names_orders_the_population(tmp_path: Path) -> None:
    listing = tmp_path / "order.txt"
    listing.write_text("s003\ns001\n s004 \ns001\n")
    pop = _build(_listed(listing, **{"workload.instances": 3}))
    assert pop.trace_ids == ("s003", "s001", "s004")  # the first rows, whitespace stripped


def test_more_instances_than_listed_series_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "order.txt"
    listing.write_text("s003\ns001\n")
    with pytest.raises(ScenarioError, match=r"workload\.instances: 5 instances but .* lists only 2 series"):
        _build(_listed(listing, **{"workload.instances": 5}))


def test_an_unknown_series_names_the_file_and_line(tmp_path: Path) -> None:
    listing = tmp_path / "order.csv"
    listing.write_text("trace_file\ns001\ns002\nnot-a-series\n")
    with pytest.raises(ScenarioError) as info:
        _build(_listed(listing, **{"workload.instances": None}))
    msg = str(info.value)
    assert msg.startswith(f"{listing}:4: ")
    assert "'not-a-series'" in msg and "planetlab/fake" in msg
    assert "\n" not in msg


def test_an_unreadable_series_file_names_the_field(tmp_path: Path) -> None:
    missing = tmp_path / "absent.csv"
    with pytest.raises(ScenarioError) as info:
        _build(_listed(missing))
    msg = str(info.value)
    assert "workload.series_file: cannot read" in msg and str(missing) in msg
    assert "\n" not in msg


def test_an_empty_series_file_names_the_field(tmp_path: Path) -> None:
    listing = tmp_path / "order.csv"
    listing.write_text("trace_file\n\n")
    with pytest.raises(ScenarioError, match=r"workload\.series_file: .* names no series"):
        _build(_listed(listing))


@pytest.mark.parametrize(
    "overrides",
    [{"workload.series_file": "order.csv"}, {"workload.mapping": "listed"}],
    ids=["file-without-listed", "listed-without-file"],
)
def test_series_file_and_listed_go_together(overrides: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        resolve_scenario("smoke", overrides)
    msg = str(info.value)
    assert "workload.series_file: give it exactly when mapping = 'listed'" in msg
    assert "smoke.toml" in msg
    assert "\n" not in msg


# --- first-fit initial placement -------------------------------------------------------------------


def _first_fit(
    mips: list[float],
    ram_mb: list[float],
    *,
    host_pe_mips: list[float],
    host_pes: list[int],
    host_ram_mb: list[float],
    pes: list[int] | None = None,
) -> list[int]:
    n, m = len(mips), len(host_pe_mips)
    return first_fit_initial_placement(
        instance_mips=np.array(mips),
        instance_ram=np.array(ram_mb) * 1e6,
        instance_ivn=np.zeros(n, dtype=np.int64),
        instance_ids=tuple(f"vm-{i}" for i in range(n)),
        instance_pes=np.array(pes if pes is not None else [1] * n, dtype=np.int64),
        host_pes=np.array(host_pes, dtype=np.int64),
        host_ivn=np.zeros(m, dtype=np.int64),
        host_cap_mips=np.array(host_pe_mips) * np.array(host_pes),
        host_pe_mips=np.array(host_pe_mips),
        host_ram=np.array(host_ram_mb) * 1e6,
    ).tolist()


def test_first_fit_packs_hosts_in_order() -> None:
    # G4-like hosts of 2 x 1860 MIPS: 1000 + 1000 + 1000 fit on host 0 (3720), the fourth does not
    placed = _first_fit(
        [1000.0, 1000.0, 1000.0, 1000.0, 500.0],
        [500.0] * 5,
        host_pe_mips=[1860.0] * 3,
        host_pes=[2] * 3,
        host_ram_mb=[4096.0] * 3,
    )
    assert placed == [0, 0, 0, 1, 0]  # the 500 MIPS VM still fits in host 0's remaining 720


def test_first_fit_respects_pe_mips() -> None:
    # a 2500 MIPS single-PE VM skips the 1860 MIPS PE hosts although their total (3720) is enough
    placed = _first_fit(
        [2500.0, 1000.0],
        [500.0, 500.0],
        host_pe_mips=[1860.0, 1860.0, 2660.0],
        host_pes=[2, 2, 2],
        host_ram_mb=[4096.0] * 3,
    )
    assert placed == [2, 0]


def test_first_fit_respects_ram() -> None:
    placed = _first_fit(
        [100.0, 100.0, 100.0],
        [3000.0, 1500.0, 1000.0],
        host_pe_mips=[1860.0, 1860.0],
        host_pes=[2, 2],
        host_ram_mb=[4096.0, 4096.0],
    )
    assert placed == [0, 1, 0]  # 3000 + 1500 > 4096, 3000 + 1000 fits


def test_first_fit_refuses_an_instance_that_fits_nowhere() -> None:
    with pytest.raises(PlacementError, match=r"vm-1 .* fits on no host"):
        _first_fit([1000.0, 3000.0], [100.0, 100.0], host_pe_mips=[1860.0], host_pes=[2], host_ram_mb=[4096.0])


def test_initial_placement_dispatches_on_the_scenario_setting() -> None:
    common: dict[str, Any] = {
        "instance_mips": np.array([500.0, 500.0]),
        "instance_ram": np.array([500e6, 500e6]),
        "instance_ivn": np.zeros(2, dtype=np.int64),
        "instance_ids": ("a", "b"),
        "instance_pes": np.ones(2, dtype=np.int64),
        "host_pes": np.array([2, 2]),
        "host_ivn": np.zeros(2, dtype=np.int64),
        "host_cap_mips": np.array([3720.0, 3720.0]),
        "host_pe_mips": np.array([1860.0, 1860.0]),
        "host_ram": np.array([4096e6, 4096e6]),
        "host_power_w": np.tile(np.linspace(86.0, 117.0, 11), (2, 1)),
    }
    assert initial_placement("first_fit", **common).tolist() == [0, 0]
    assert initial_placement("power_aware_best_fit", **common).tolist() == [0, 1]
