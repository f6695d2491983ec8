"""``mirrortwin compare --variant``: labelled configurations with their own overrides."""

from __future__ import annotations

import pytest

from mirrortwin.cli import UsageError, main, parse_variant
from mirrortwin.config import load_settings
from mirrortwin.wiring import Variant, prepare_comparison, run_prepared


def test_a_variant_is_label_policy_and_overrides():
    v = parse_variant("no-mirror:null:rma.enabled=false;rma.snapshot_interval_s=600")
    assert v == Variant("no-mirror", "null", {"rma.enabled": False, "rma.snapshot_interval_s": 600})
    assert parse_variant("plain:threshold") == Variant("plain", "threshold", {})


@pytest.mark.parametrize("text", ["", "label", ":null", "label:", "x:null:novalue"])
def test_a_malformed_variant_is_a_usage_error(text):
    with pytest.raises((UsageError, Exception)) as info:
        parse_variant(text)
    assert "\n" not in str(info.value)


def test_variants_share_the_population_and_keep_their_labels(traces_root):
    variants = [Variant("mirrored", "null", {}), Variant("bare", "null", {"rma.enabled": False})]
    prepared = prepare_comparison(
        "smoke", variants=variants, overrides={"duration_s": 3600.0}, settings=load_settings()
    )
    assert prepared.populations["mirrored"] is prepared.populations["bare"]
    assert prepared.scenarios["bare"].rma.enabled is False
    result = run_prepared(prepared, "bare")
    assert result.policy == "bare" and result.summary["policy_name"] == "null"
    assert result.summary["bytes_mirrored"] == 0


def test_repeated_labels_are_refused(traces_root, capsys):
    argv = ["compare", "smoke", "--variant", "a:null", "--variant", "a:threshold"]
    assert main(argv, settings=load_settings()) == 2
    assert "given more than once" in capsys.readouterr().err
