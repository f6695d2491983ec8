from __future__ import annotations

import pytest

from realworld.agent.samples import ResourceSample, SampleRing


def _sample(t: float) -> ResourceSample:
    return ResourceSample(t, 0.5, 1024, 0.0, 0.0, 0.0, 0.0)


def test_ring_keeps_the_newest_in_order_and_drops_the_oldest() -> None:
    ring = SampleRing(3)
    for t in range(5):
        ring.append(_sample(float(t)))
    assert len(ring) == 3
    assert [s.timestamp for s in ring.since(-1.0)] == [2.0, 3.0, 4.0]
    assert ring.latest() == _sample(4.0)


def test_since_is_strictly_after() -> None:
    ring = SampleRing(10)
    for t in range(5):
        ring.append(_sample(float(t)))
    assert [s.timestamp for s in ring.since(2.0)] == [3.0, 4.0]
    assert ring.since(4.0) == []


def test_empty_ring_and_bad_capacity() -> None:
    assert SampleRing(1).latest() is None
    with pytest.raises(ValueError, match="capacity"):
        SampleRing(0)


def test_sample_as_dict_names_every_field() -> None:
    assert set(_sample(1.0).as_dict()) == {
        "timestamp",
        "cpu_util",
        "memory_bytes",
        "net_rx_bps",
        "net_tx_bps",
        "disk_read_bps",
        "disk_write_bps",
    }
