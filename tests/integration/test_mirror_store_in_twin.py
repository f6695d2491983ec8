"""The Mirror Store inside the twin: a full store refuses snapshots and the agents re-base."""

from __future__ import annotations

import numpy as np
import pytest

from mirrortwin.config import load_settings
from mirrortwin.wiring import make_population, resolve_for_policy, seed_streams
from sim.world import build_world

pytestmark = pytest.mark.usefixtures("traces_root")


def _world(overrides: dict):
    spec = resolve_for_policy("smoke", policy="null", overrides=overrides)
    pop_rng, run_rng = seed_streams(spec.seed)
    population = make_population(spec, load_settings(), pop_rng)
    return build_world(spec, population, rng=run_rng)


def test_a_store_that_is_too_small_refuses_and_chains_stay_whole():
    # 60 VMs of 0.6-1.7 GB, bases compressed 3.25x: about 20 GB of bases; give the store 5 GB
    world = _world({"topology.ivns.1.mirror_store_capacity_gb": 5.0})
    world.env.run(until=3 * 3600.0)
    m = world.mirroring
    chains = m.chains
    assert chains.refused.sum() > 0
    assert chains.used[1] <= 5e9 + 1e-3
    for i in range(len(m.latest_s)):
        times, _, bases = chains.held_entries(i)
        assert np.all(bases >= chains.start[i])  # every held snapshot restorable
        if times.size:
            assert times[-1] == m.latest_s[i]
    # instances whose base never fitted have no restore point and kept sending (refused) images
    never = np.flatnonzero(~np.isfinite(m.latest_s))
    assert never.size > 0
    assert np.all(m.snapshots_taken[never] == 0) and np.all(chains.refused[never] > 0)
    assert m.bytes_sent > chains.stored_bytes()


def test_with_room_every_instance_has_a_restore_point_within_one_interval():
    world = _world({})
    world.env.run(until=2 * 3600.0)
    m = world.mirroring
    assert np.all(np.isfinite(m.latest_s))
    assert np.all(2 * 3600.0 - m.latest_s <= m.interval_s + 60.0)
    assert m.chains.refused.sum() == 0
    risk = m.data_at_risk_bytes(2 * 3600.0)
    assert np.all(risk >= 0) and np.all(risk <= m.working_set + 1e-6)


def test_an_agent_sends_one_snapshot_at_a_time_so_a_slow_base_is_not_resent():
    # A store that ingests 100 Mb/s: the ~20 GB of bases take ~30 min, six snapshot intervals.
    # Captures falling due meanwhile are skipped; once a base lands the next delta builds on it, so
    # nothing is refused and no base is sent twice.
    world = _world({"topology.ivns.1.mirror_store_restore_bps": 1e8})
    world.env.run(until=3 * 3600.0)
    m = world.mirroring
    assert m.snapshots_skipped_uploading.sum() > 0
    assert m.chains.refused.sum() == 0
    assert np.all(np.isfinite(m.latest_s))
    base_bytes = float((world.dc.state_bytes / m.reduction).sum())
    assert m.bytes_sent < 2 * base_bytes  # the bases once, plus deltas far smaller than a base
