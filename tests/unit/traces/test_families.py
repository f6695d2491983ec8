from __future__ import annotations

import pytest

from scenarios.traces import FAMILIES, TraceNotFoundError, available_trace_sets, list_subsets, load_trace

pytestmark = pytest.mark.traces


def test_load_trace_defaults(traces_root, tmp_path):
    assert load_trace("planetlab", None, [tmp_path, traces_root]).name == "planetlab/20110303"
    assert load_trace("azure", None, [traces_root]).name == "azure/microsoft_avg_100"
    assert load_trace("alibaba", None, [traces_root], step_s=300).step_s == 300.0
    assert load_trace("planetlab", "20110306", [traces_root]).n_instances == 898


def test_list_subsets(traces_root, tmp_path):
    assert list_subsets("planetlab", [traces_root, tmp_path])[:2] == ["20110303", "20110306"]
    assert len(list_subsets("planetlab", [traces_root])) == 8
    assert list_subsets("bitbrains", [traces_root]) == ["rnd/2013-8"]
    assert list_subsets("azure", [traces_root]) == [
        "microsoft_avg_100",
        "microsoft_max_100",
        "periodic_avg_78",
        "periodic_max_78",
    ]
    assert list_subsets("alibaba", [traces_root]) == ["machine_usage"]
    assert all(list_subsets(f, [tmp_path]) == [] for f in FAMILIES)


def test_not_found_says_what_to_download_and_from_where(tmp_path):
    roots = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(TraceNotFoundError) as err:
        load_trace("planetlab", "20110309", roots)
    msg = str(err.value)
    assert "\n" not in msg
    assert "planetlab/20110309" in msg
    assert str(tmp_path / "a" / "planetlab" / "20110309") in msg and str(tmp_path / "b") in msg
    assert "mirrortwin traces download planetlab-20110309" in msg
    assert "https://github.com/Cloudslab/cloudsim/tree/476ceef2c0ffe02e0b637bbeed4d6805dbd1707a" in msg
    for family, name in [("bitbrains", "bitbrains-rnd"), ("azure", "azure-v1-sample"), ("alibaba", "alibaba2018")]:
        with pytest.raises(TraceNotFoundError, match=f"mirrortwin traces download {name}"):
            load_trace(family, None, roots)


def test_bad_family_and_subset(tmp_path):
    with pytest.raises(ValueError, match="unknown trace family 'google'"):
        load_trace("google", None, [tmp_path])
    with pytest.raises(ValueError, match="plain name"):
        load_trace("planetlab", "../etc", [tmp_path])
    with pytest.raises(ValueError, match="only 'machine_usage'"):
        load_trace("alibaba", "machine_meta", [tmp_path])


def test_every_download_name_has_a_public_source():
    sets = available_trace_sets()
    days = ["20110303", "20110306", "20110309", "20110322", "20110325", "20110409", "20110411", "20110412"]
    others = {"planetlab", "bitbrains-rnd", "azure-v1-sample", "alibaba2018"}
    assert set(sets) == {f"planetlab-{d}" for d in days} | others
    assert all("source: https://github.com/" in v for v in sets.values())
