"""``S3Backend.from_url``: the one string the store CLI will take for an S3 backend."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from realworld.store.s3_backend import S3Backend


def test_url_gives_bucket_prefix_endpoint_and_region() -> None:
    backend = S3Backend.from_url(
        "s3://mirror-store/stores/ivn-1/?endpoint=http://127.0.0.1:9000&region=eu-west-1",
        access_key="k",
        secret_key="s",
    )
    assert backend.bucket == "mirror-store"
    assert backend.prefix == "stores/ivn-1"
    assert backend.endpoint_url == "http://127.0.0.1:9000"
    assert backend._client.meta.region_name == "eu-west-1"
    assert backend.conditional_writes is True


def test_url_without_prefix_or_endpoint_means_aws_and_the_whole_bucket() -> None:
    backend = S3Backend.from_url("s3://mirror-store?conditional_writes=false", access_key="k", secret_key="s")
    assert (backend.bucket, backend.prefix, backend.endpoint_url) == ("mirror-store", "", None)
    assert backend.conditional_writes is False


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://bucket/prefix", "scheme must be 's3'"),
        ("s3:///prefix", "bucket name is missing"),
        ("s3://key:secret@bucket/p", "bare bucket name"),
        ("s3://bucket/p?endpoint=127.0.0.1:9000", "endpoint must be an http(s) URL"),
        ("s3://bucket/p?endpiont=http://x", "unknown query parameter(s) ['endpiont']"),
        ("s3://bucket/p?conditional_writes=maybe", "conditional_writes must be 'true' or 'false'"),
        ("s3://bucket/../up?endpoint=http://x", "S3 backend prefix '../up' is not key-shaped"),
    ],
)
def test_bad_urls_get_one_error_naming_the_wrong_part(url: str, complaint: str) -> None:
    with pytest.raises(ValueError) as raised:
        S3Backend.from_url(url, access_key="k", secret_key="s")
    assert complaint in str(raised.value)


def test_half_given_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="access_key and secret_key"):
        S3Backend("bucket", endpoint_url=None, access_key="only-the-id")


def test_server_without_conditional_writes_switches_to_head_then_put() -> None:
    """A 501 for If-None-Match cannot be produced by moto, so the answer is stubbed at the botocore layer."""
    backend = S3Backend("bucket", endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s")
    with Stubber(backend._client) as stub:
        stub.add_client_error("put_object", service_error_code="NotImplemented", http_status_code=501)
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response("put_object", {})
        assert backend.put_if_absent("chunks/a", b"data") is True
        stub.assert_no_pending_responses()
    assert backend.conditional_writes is False
