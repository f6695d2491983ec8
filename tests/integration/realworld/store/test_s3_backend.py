"""S3-specific behaviour of the Mirror Store backend, against a real moto S3 server over HTTP.

The laws every backend shares are in tests/contract/test_object_backend_contract.py; here is what only
S3 has: the wire (Content-MD5), conditional writes under concurrency, bucket prefixes, the HEAD-then-PUT
fallback, and what happens when the server goes away.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from realworld.store.backend import BackendError
from realworld.store.s3_backend import S3Backend
from tests.servers.moto_s3_server import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    MotoS3Server,
    running_moto_s3_server,
)


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3Server]:
    with running_moto_s3_server() as server:
        yield server


def s3_backend(server: MotoS3Server, bucket: str, **options: Any) -> S3Backend:
    return S3Backend(
        bucket,
        endpoint_url=server.endpoint_url,
        region=TEST_REGION,
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET_KEY,
        **options,
    )


def test_every_upload_carries_the_content_md5_of_its_body(moto_s3: MotoS3Server) -> None:
    backend = s3_backend(moto_s3, moto_s3.new_bucket())
    sent: list[tuple[str, str | None]] = []

    def record(request: Any, **_: Any) -> None:
        md5 = request.headers.get("Content-MD5")
        sent.append((request.url, md5.decode() if isinstance(md5, bytes) else md5))

    backend._client.meta.events.register("before-send.s3.PutObject", record)
    data = bytes(range(256)) * 10
    backend.put("chunks/md5", data)
    backend.put_if_absent("chunks/md5-conditional", data)

    expected = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert [md5 for _, md5 in sent] == [expected, expected]
    # The server computed the same digest from the bytes it received: the body arrived intact.
    etag = moto_s3.client().head_object(Bucket=backend.bucket, Key="chunks/md5")["ETag"]
    assert etag.strip('"') == hashlib.md5(data).hexdigest()


def test_concurrent_put_if_absent_losers_see_false_and_keep_the_winners_bytes(moto_s3: MotoS3Server) -> None:
    """Eight writers race for one key through conditional PUTs.

    "Exactly one winner" is the server's guarantee (AWS S3 documents it for If-None-Match). moto 5.2.5
    checks the precondition and then inserts without a lock, so against moto this test can only demand
    what holds whatever the server's interleaving: at least one writer wins, every 412 becomes False, and
    the stored bytes are a winner's. In 60 local trials of 8 writers moto never let two win.
    """
    backend = s3_backend(moto_s3, moto_s3.new_bucket())
    writers = 8
    start = threading.Barrier(writers)

    def write(index: int) -> bool:
        start.wait(timeout=30)
        return backend.put_if_absent("chunks/contended", f"writer {index}".encode())

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(write, range(writers)))

    winners = [index for index, won in enumerate(results) if won]
    assert winners
    assert backend.get("chunks/contended") in {f"writer {index}".encode() for index in winners}
    assert backend.put_if_absent("chunks/contended", b"late writer") is False


def test_head_then_put_fallback_keeps_put_if_absent_semantics(moto_s3: MotoS3Server) -> None:
    backend = s3_backend(moto_s3, moto_s3.new_bucket(), conditional_writes=False)
    assert backend.put_if_absent("chunks/fallback", b"first") is True
    assert backend.put_if_absent("chunks/fallback", b"second") is False
    assert backend.get("chunks/fallback") == b"first"


def test_prefixes_keep_stores_sharing_a_bucket_apart(moto_s3: MotoS3Server) -> None:
    bucket = moto_s3.new_bucket()
    ivn_1 = s3_backend(moto_s3, bucket, prefix="stores/ivn-1")
    ivn_2 = s3_backend(moto_s3, bucket, prefix="/stores/ivn-2/")
    ivn_1.put("chunks/a", b"one")
    ivn_2.put("chunks/a", b"two")
    ivn_2.put("chunks/b", b"two-b")

    assert ivn_1.get("chunks/a") == b"one"
    assert list(ivn_1.list("")) == ["chunks/a"]
    assert list(ivn_2.list("chunks/")) == ["chunks/a", "chunks/b"]
    ivn_1.delete("chunks/a")
    assert ivn_2.get("chunks/a") == b"two"
    raw_keys = [entry["Key"] for entry in moto_s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert raw_keys == ["stores/ivn-2/chunks/a", "stores/ivn-2/chunks/b"]


def test_missing_bucket_is_a_backend_error_naming_the_bucket(moto_s3: MotoS3Server) -> None:
    backend = s3_backend(moto_s3, "mt-bucket-that-was-never-created")
    with pytest.raises(BackendError, match="mt-bucket-that-was-never-created") as raised:
        backend.put("chunks/a", b"data")
    assert "NoSuchBucket" in str(raised.value)


def test_invalid_key_is_refused_before_any_network_io() -> None:
    """The endpoint is a closed port: if the key check came after I/O this would be a BackendError."""
    backend = S3Backend("mt-no-server", endpoint_url="http://127.0.0.1:9", access_key="unused", secret_key="unused")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        backend.put("chunks/../escape", b"data")
    with pytest.raises(ValueError, match="segment"):
        backend.list("/absolute")  # refused when called, before any page is requested


def test_stopped_server_turns_into_one_clear_backend_error() -> None:
    with running_moto_s3_server() as server:
        bucket = server.new_bucket()
        backend = s3_backend(server, bucket)
        backend.put("manifests/vm-7/0003", b"manifest")
    # The server is stopped now; its port refuses connections.
    for operation, arguments in [
        ("get", ("manifests/vm-7/0003",)),
        ("put", ("manifests/vm-7/0003", b"new")),
        ("put_if_absent", ("manifests/vm-7/0003", b"new")),
        ("exists", ("manifests/vm-7/0003",)),
        ("delete", ("manifests/vm-7/0003",)),
        ("size", ("manifests/vm-7/0003",)),
    ]:
        with pytest.raises(BackendError) as raised:
            getattr(backend, operation)(*arguments)
        message = str(raised.value)
        assert f"S3 {operation} of key 'manifests/vm-7/0003' in bucket {bucket!r}" in message
        assert server.endpoint_url in message
        assert "\n" not in message and "Traceback" not in message
    with pytest.raises(BackendError, match=rf"S3 list of prefix 'manifests/' in bucket {bucket!r}"):
        list(backend.list("manifests/"))
