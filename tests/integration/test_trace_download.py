"""Download trace sets from a local mirror of the shared folder and load them from the cache only."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from scenarios.traces import TraceDownloadError, TraceNotFoundError, download_trace_set, load_trace
from scenarios.traces.download import read_manifest

pytestmark = pytest.mark.traces


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1 (random port); yields the base URL and the list of requested paths."""
    requested: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _assert_same(a, b):
    assert a.instance_ids == b.instance_ids and a.step_s == b.step_s and a.metrics() == b.metrics()
    for m in a.metrics():
        np.testing.assert_array_equal(getattr(a, m), getattr(b, m))


@pytest.mark.slow
def test_download_from_mirror_then_load_from_cache_only(traces_root, tmp_path):
    cache = tmp_path / "cache"
    with serve(traces_root) as (url, requested):
        root = download_trace_set("planetlab-20110303", cache, mirror_url=url, progress=False)
        root2 = download_trace_set("alibaba2018", cache, mirror_url=url, progress=False)
        assert root == root2 == cache / "traces"
        assert len(requested) == 1052 + 2
        # everything verified and present: a second run fetches nothing
        requested.clear()
        download_trace_set("planetlab-20110303", cache, mirror_url=url, progress=False)
        download_trace_set("alibaba2018", cache, mirror_url=url, progress=False)
        assert requested == []
    _assert_same(load_trace("planetlab", "20110303", [root]), load_trace("planetlab", "20110303", [traces_root]))
    _assert_same(load_trace("alibaba", None, [root]), load_trace("alibaba", None, [traces_root]))
    assert not list(root.rglob("*.part"))


def test_corrupt_file_is_rejected_and_nothing_kept(traces_root, tmp_path):
    mirror = tmp_path / "mirror" / "alibaba2018"
    mirror.mkdir(parents=True)
    good = (traces_root / "alibaba2018" / "machine_usage.csv.gz").read_bytes()
    bad = gzip.decompress(good).replace(b"m_1933", b"m_1999", 1)
    (mirror / "machine_usage.csv.gz").write_bytes(gzip.compress(bad, compresslevel=1))
    shutil.copy(traces_root / "alibaba2018" / "machine_meta.csv.gz", mirror / "machine_meta.csv.gz")
    cache = tmp_path / "cache"
    with serve(tmp_path / "mirror") as (url, _), pytest.raises(TraceDownloadError) as err:
        download_trace_set("alibaba2018", cache, mirror_url=url, progress=False)
    msg = str(err.value)
    assert f"{url}/alibaba2018/machine_usage.csv.gz: checksum mismatch" in msg and "\n" not in msg
    assert not (cache / "traces" / "alibaba2018" / "machine_usage.csv.gz").exists()
    leftovers = [p.name for p in (cache / "traces").rglob("*") if p.is_file()]
    assert leftovers in ([], ["machine_meta.csv.gz"])  # only the verified file may remain
    with pytest.raises(TraceNotFoundError):
        load_trace("alibaba", None, [cache / "traces"])


def test_http_error_names_url(tmp_path):
    expected = r"alibaba2018/machine_\w+\.csv\.gz: HTTP 404"
    with serve(tmp_path) as (url, _), pytest.raises(TraceDownloadError, match=expected):
        download_trace_set("alibaba2018", tmp_path / "cache", mirror_url=url, progress=False)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_corrupt_cached_file_is_fetched_again(traces_root, tmp_path):
    cache = tmp_path / "cache"
    target = cache / "traces" / "alibaba2018" / "machine_meta.csv.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"garbage")
    with serve(traces_root) as (url, requested):
        download_trace_set("alibaba2018", cache, mirror_url=url, progress=False)
    assert sorted(requested) == ["/alibaba2018/machine_meta.csv.gz", "/alibaba2018/machine_usage.csv.gz"]
    assert target.read_bytes() == (traces_root / "alibaba2018" / "machine_meta.csv.gz").read_bytes()


def test_regzipped_upstream_copy_counts_as_verified(traces_root, tmp_path):
    # a file fetched from the public source is re-gzipped here, so its bytes differ but its content matches
    cache = tmp_path / "cache"
    target = cache / "traces" / "alibaba2018" / "machine_meta.csv.gz"
    target.parent.mkdir(parents=True)
    content = gzip.decompress((traces_root / "alibaba2018" / "machine_meta.csv.gz").read_bytes())
    target.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    with serve(traces_root) as (url, requested):
        download_trace_set("alibaba2018", cache, mirror_url=url, progress=False)
    assert requested == ["/alibaba2018/machine_usage.csv.gz"]


def test_azure_without_mirror_explains_rda(tmp_path):
    with pytest.raises(TraceDownloadError, match=r"R data \(\.rda\).*pyreadr"):
        download_trace_set("azure-v1-sample", tmp_path, progress=False)


def test_manifests_cover_the_shared_folder(traces_root):
    for name, folder in [("planetlab-20110303", "planetlab/20110303"), ("bitbrains-rnd", "bitbrains/rnd/2013-8")]:
        listed = {e.path for e in read_manifest(name)}
        present = {str(p.relative_to(traces_root)) for p in (traces_root / folder).iterdir()}
        assert listed == present
    assert len(read_manifest("planetlab")) == 9250
    with pytest.raises(ValueError, match="unknown trace set"):
        read_manifest("nope")
