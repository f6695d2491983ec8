"""``mirrortwin store serve --backend s3://...``: the same service over an S3-compatible bucket (moto's server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from realworld.store.client import MirrorStoreClient
from tests.conftest import REPO_ROOT
from tests.integration.realworld.store.conftest import TOKEN_A, free_port, write_tenants
from tests.servers.moto_s3_server import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, running_moto_s3_server


def _serve(backend: str, tenants, port: int, log) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY, "AWS_DEFAULT_REGION": TEST_REGION}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mirrortwin", "store", "serve", "--backend", backend, "--tenants", str(tenants),
             "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_snapshots_round_trip_through_a_store_kept_in_a_bucket(tmp_path):
    tenants = write_tenants(tmp_path / "tenants.toml")
    rng = np.random.default_rng(3)
    state = tmp_path / "state"
    state.mkdir()
    (state / "dump.rdb").write_bytes(rng.bytes(3_000_000))
    (state / "sub").mkdir()
    (state / "sub" / "aof").write_bytes(rng.bytes(200_000))
    with running_moto_s3_server() as s3:
        bucket = s3.new_bucket()
        port = free_port()
        proc = _serve(f"s3://{bucket}/stores/ivn-b?endpoint={s3.endpoint_url}&region={TEST_REGION}", tenants, port,
                      tmp_path / "store.log")
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "store.log").read_text()
                    time.sleep(0.1)
            client = MirrorStoreClient(url, TOKEN_A)
            first = client.upload_directory("redis-1", state, timestamp=10.0)
            again = client.upload_directory("redis-1", state, timestamp=20.0)
            assert first.sent_bytes > 0 and again.sent_bytes == 0  # deduplicated in the bucket too
            stats = client.restore(again.snapshot_id, tmp_path / "restored")
            assert stats.file_count == 2
            assert (tmp_path / "restored" / "dump.rdb").read_bytes() == (state / "dump.rdb").read_bytes()
            assert (tmp_path / "restored" / "sub" / "aof").read_bytes() == (state / "sub" / "aof").read_bytes()
            keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
            assert keys and all(k.startswith("stores/ivn-b/") for k in keys)  # everything under the prefix
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_missing_bucket_is_one_startup_line(tmp_path):
    tenants = write_tenants(tmp_path / "tenants.toml")
    with running_moto_s3_server() as s3:
        proc = _serve(f"s3://no-such-bucket?endpoint={s3.endpoint_url}", tenants, free_port(), tmp_path / "log")
        assert proc.wait(60) == 2
    text = (tmp_path / "log").read_text().strip()
    assert "--backend" in text and "no-such-bucket" in text and "Traceback" not in text and len(text.splitlines()) == 1
