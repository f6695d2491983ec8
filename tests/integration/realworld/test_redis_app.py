"""Redis catch-up and writer cut-over against real redis-server processes."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import redis

from realworld.loadgen import RedisLoad
from realworld.redis_app import RedisCutover, catch_up, is_healthy, replication_info
from tests.servers.redis_server import redis_server


def test_a_replica_restored_from_a_snapshot_catches_up_and_takes_over_without_losing_a_write(tmp_path):
    with redis_server(tmp_path / "src") as source:
        src = source.client()
        for i in range(500):
            src.set(f"before:{i}", i)
        src.save()  # the mirror snapshot: the RDB the agent's hook capture ships
        for i in range(300):
            src.set(f"after:{i}", i)  # written after the snapshot: must arrive by catch-up
        (tmp_path / "dst").mkdir()
        shutil.copy(tmp_path / "src" / "dump.rdb", tmp_path / "dst" / "dump.rdb")
        with redis_server(tmp_path / "dst") as replica:
            assert replica.client().get("before:7") == b"7" and replica.client().get("after:7") is None
            catch_up(source, replica)
            assert replica.client().get("after:299") == b"299"

            switched = []
            cutover = RedisCutover({"vm": source, "vm@b": replica}.__getitem__)
            cutover("vm", "vm@b", lambda: switched.append(True))
            assert switched == [True]
            assert replication_info(replica)["role"] == "master"
            assert replication_info(source)["role"] == "slave"
            replica.client().set("new-writer", 1)
            with pytest.raises(redis.ReadOnlyError):
                src.set("old-writer", 1)  # the old writer refuses writes: none can be lost on it
            assert cutover.records[0].paused_s >= 0 and is_healthy(replica)


@pytest.mark.slow
def test_writes_under_load_survive_a_cutover_when_clients_follow_the_writer(tmp_path):
    """Without a load balancer: the load writes to the source; after the cut-over the source refuses and
    the client retries; verification on the new writer finds every acknowledged key."""
    with redis_server(tmp_path / "src") as source, redis_server(tmp_path / "dst") as replica:
        catch_up(source, replica)
        load = RedisLoad((source.host, source.port), (source.host, source.port),
                         rng=np.random.default_rng(0), rate_per_s=400, duration_s=3, retry_budget_s=0.3)
        load.start()
        time.sleep(1.0)
        RedisCutover({"a": source, "b": replica}.__getitem__)("a", "b", lambda: None)
        report = load.stop()
        assert report.writes_acked > 100
        assert load.verify((replica.host, replica.port)) == 0
        # writes sent to the old writer after the cut-over were refused (READONLY), never acknowledged
        assert report.failed > 0 and any("ReadOnly" in e for e in report.errors)
