"""An S3-compatible object backend for Mirror Stores that outgrow one machine.

Semantics, and why they hold:

* ``put`` is one ``PutObject``: S3 replaces the whole object atomically, so readers see the old or the
  new object, never a partial one. Every upload carries ``Content-MD5`` so a server that checks it
  (AWS S3, MinIO, Ceph RGW) refuses bytes corrupted on the way instead of storing them.
* ``put_if_absent`` is a conditional ``PutObject`` with ``If-None-Match: *`` (AWS S3 since August 2024):
  of two concurrent writers of one key exactly one succeeds, the other gets ``412 Precondition Failed``.
  For servers without conditional writes (``conditional_writes=False``, or detected by a ``501``) it
  falls back to HEAD-then-PUT; that has a race (both writers may PUT), which is harmless for chunks
  because a content-addressed key always receives the same bytes.
* ``list`` follows continuation tokens, so it returns every key, not only the first 1,000; S3 returns
  keys in UTF-8 byte order, which for the ASCII key alphabet of :func:`validate_key` is sorted order.
* Errors: an absent key is ``KeyError(key)``; every other failure (HTTP error, refused connection,
  timeout) is one :class:`BackendError` naming the operation, key, bucket and endpoint.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from realworld.store.backend import BackendError, validate_key

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
"""Error codes S3-compatible servers use for an absent object (HEAD answers a bare 404 without a body)."""

CONDITIONAL_CONFLICT_RETRIES = 3
"""How often to retry a conditional PUT that AWS answered with 409 (another conditional write in flight)."""

DEFAULT_CLIENT_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
    s3={"addressing_style": "path"},
)
"""Path-style addressing works with every S3-compatible server (virtual-host style needs DNS per bucket);
few, bounded retries so an unreachable endpoint becomes a BackendError in seconds, not minutes."""


class S3Backend:
    """An :class:`~realworld.store.backend.ObjectBackend` over one bucket (and optional key prefix) of an S3 API.

    One instance may be shared by the store's threads: boto3 clients are thread-safe and the backend keeps
    no other mutable state (apart from switching ``conditional_writes`` off once, see ``put_if_absent``).

    Args:
        bucket: the bucket; it must exist (the backend never creates buckets, that is an operator decision).
        endpoint_url: the S3-compatible endpoint, e.g. ``http://127.0.0.1:9000``; None means AWS S3.
        prefix: a namespace inside the bucket (e.g. ``stores/ivn-1``) so several stores can share a bucket.
        region: the signing region.
        access_key: access key id; None uses boto3's usual credential chain (environment, profile, role).
        secret_key: secret access key; give it together with ``access_key``.
        client: a ready boto3 S3 client (tests, custom sessions); when given, the connection arguments
            above are not used.
        list_page_size: ``MaxKeys`` per ``ListObjectsV2`` page (S3 caps it at 1,000); smaller values exist so
            pagination can be tested without thousands of objects.
        conditional_writes: use ``If-None-Match: *`` for ``put_if_absent``; set False for servers that do
            not support conditional writes.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        prefix: str = "",
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        client: Any = None,
        list_page_size: int = 1000,
        conditional_writes: bool = True,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is empty")
        if (access_key is None) != (secret_key is None):
            raise ValueError("S3 credentials: give both access_key and secret_key, or neither")
        if not 1 <= list_page_size <= 1000:
            raise ValueError(f"list_page_size must be between 1 and 1000, got {list_page_size}")
        normalised_prefix = prefix.strip("/")
        if normalised_prefix:
            try:
                validate_key(normalised_prefix)
            except ValueError as error:
                raise ValueError(f"S3 backend prefix {prefix!r} is not key-shaped: {error}") from None
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = normalised_prefix
        self.list_page_size = list_page_size
        self.conditional_writes = conditional_writes
        self._client = (
            client
            if client is not None
            else boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=DEFAULT_CLIENT_CONFIG,
            )
        )

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> S3Backend:
        """Build a backend from ``s3://bucket[/prefix][?endpoint=URL&region=NAME&conditional_writes=false]``.

        Why: the store CLI takes one ``--backend`` string; credentials stay out of the URL (they come from
        boto3's credential chain, e.g. ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) so they never end
        up in shell history or process listings. ``overrides`` are passed to the constructor as is.

        Raises:
            ValueError: naming the part of the URL that is wrong.
        """
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise ValueError(f"backend URL {url!r}: scheme must be 's3', got {parts.scheme!r}")
        if not parts.netloc:
            raise ValueError(f"backend URL {url!r}: bucket name is missing (expected s3://bucket/prefix)")
        if "@" in parts.netloc or ":" in parts.netloc:
            raise ValueError(
                f"backend URL {url!r}: bucket part {parts.netloc!r} must be a bare bucket name "
                "(no credentials or port; credentials come from the environment, the endpoint from ?endpoint=)"
            )
        known = {"endpoint", "region", "conditional_writes"}
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
        unknown = sorted(set(query) - known)
        if unknown:
            raise ValueError(f"backend URL {url!r}: unknown query parameter(s) {unknown}; known: {sorted(known)}")
        arguments: dict[str, Any] = {"endpoint_url": query.get("endpoint", [None])[-1] or None}
        if "region" in query:
            arguments["region"] = query["region"][-1]
        if "conditional_writes" in query:
            flag = query["conditional_writes"][-1].lower()
            if flag not in {"true", "false"}:
                raise ValueError(f"backend URL {url!r}: conditional_writes must be 'true' or 'false', got {flag!r}")
            arguments["conditional_writes"] = flag == "true"
        endpoint = arguments["endpoint_url"]
        if endpoint is not None and urlsplit(endpoint).scheme not in {"http", "https"}:
            raise ValueError(f"backend URL {url!r}: endpoint must be an http(s) URL, got {endpoint!r}")
        arguments.update(overrides)
        return cls(parts.netloc, prefix=parts.path.strip("/"), **arguments)

    # -- the ObjectBackend protocol ------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Replace the object under ``key`` with ``data`` in one PUT (atomic on S3)."""
        object_key = self._object_key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=object_key, Body=data, ContentMD5=_content_md5(data))
        except (ClientError, BotoCoreError) as error:
            raise self._backend_error("put", key, error) from error

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``data`` unless ``key`` exists; True if this call wrote it.

        If the server stored the object but its answer was lost (timeout), botocore's retry gets 412 and this
        returns False although this call wrote it; for content-addressed chunks the stored bytes are right
        either way, only the dedup count is off by one.
        """
        object_key = self._object_key(key)
        if not self.conditional_writes:
            return self._put_if_absent_by_head(key, data)
        for _attempt in range(CONDITIONAL_CONFLICT_RETRIES):
            try:
                self._client.put_object(
                    Bucket=self.bucket, Key=object_key, Body=data, ContentMD5=_content_md5(data), IfNoneMatch="*"
                )
                return True
            except ClientError as error:
                code = _error_code(error)
                if code in {"PreconditionFailed", "412"}:
                    return False
                if code in {"ConditionalRequestConflict", "409"}:
                    continue  # another conditional write to this key is in flight; AWS asks us to retry
                if code in {"NotImplemented", "501"}:
                    # The server does not do conditional writes: remember that and use the documented fallback.
                    self.conditional_writes = False
                    return self._put_if_absent_by_head(key, data)
                raise self._backend_error("put_if_absent", key, error) from error
            except BotoCoreError as error:
                raise self._backend_error("put_if_absent", key, error) from error
        raise BackendError(
            f"S3 put_if_absent of key {key!r} in bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'} failed: "
            f"{CONDITIONAL_CONFLICT_RETRIES} conditional PUTs in a row answered 409 ConditionalRequestConflict"
        )

    def get(self, key: str) -> bytes:
        """Return the whole object; KeyError if absent."""
        object_key = self._object_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            return bytes(response["Body"].read())
        except ClientError as error:
            if _error_code(error) in NOT_FOUND_CODES:
                raise KeyError(key) from None
            raise self._backend_error("get", key, error) from error
        except BotoCoreError as error:
            raise self._backend_error("get", key, error) from error

    def exists(self, key: str) -> bool:
        """Whether the object exists (one HEAD request)."""
        try:
            self._head(key, operation="exists")
        except KeyError:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete the object; S3 answers 204 for absent keys too, so this is idempotent."""
        object_key = self._object_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _error_code(error) in NOT_FOUND_CODES:
                return
            raise self._backend_error("delete", key, error) from error
        except BotoCoreError as error:
            raise self._backend_error("delete", key, error) from error

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every key starting with ``prefix`` in sorted order, page by page (continuation tokens).

        The prefix is checked now, not at the first ``next()``, so a bad prefix fails where it is passed.
        """
        object_prefix = self._object_prefix(prefix)
        return self._list_pages(prefix, object_prefix)

    def _list_pages(self, prefix: str, object_prefix: str) -> Iterator[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": object_prefix, "MaxKeys": self.list_page_size}
        while True:
            try:
                page = self._client.list_objects_v2(**request)
            except (ClientError, BotoCoreError) as error:
                raise self._backend_error("list", prefix, error, subject="prefix") from error
            for entry in page.get("Contents", []):
                yield entry["Key"][strip:]
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def size(self, key: str) -> int:
        """Stored size in bytes (from HEAD); KeyError if absent."""
        return int(self._head(key, operation="size")["ContentLength"])

    # -- helpers -------------------------------------------------------------------------------------

    def _put_if_absent_by_head(self, key: str, data: bytes) -> bool:
        """HEAD-then-PUT for servers without conditional writes.

        Racy: two writers can both see "absent" and both PUT. For content-addressed immutable chunks both
        PUTs carry identical bytes, so the object ends up correct and only the True/False answer (used for
        dedup statistics) can be wrong for one of them.
        """
        if self.exists(key):
            return False
        self.put(key, data)
        return True

    def _head(self, key: str, *, operation: str) -> dict[str, Any]:
        object_key = self._object_key(key)
        try:
            return dict(self._client.head_object(Bucket=self.bucket, Key=object_key))
        except ClientError as error:
            if _error_code(error) in NOT_FOUND_CODES:
                raise KeyError(key) from None
            raise self._backend_error(operation, key, error) from error
        except BotoCoreError as error:
            raise self._backend_error(operation, key, error) from error

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object_prefix(self, prefix: str) -> str:
        """Map a listing prefix into the bucket; it may end mid-segment or with '/', but must be key-shaped."""
        if not isinstance(prefix, str):
            raise ValueError(f"list prefix must be a string, got {type(prefix).__name__}")
        if prefix:
            validate_key(prefix.removesuffix("/"))
        if not self.prefix:
            return prefix
        return f"{self.prefix}/{prefix}"

    def _backend_error(self, operation: str, key: str, error: Exception, *, subject: str = "key") -> BackendError:
        """One message naming operation, key (or list prefix), bucket and endpoint, whatever botocore raised."""
        where = self.endpoint_url or "AWS S3"
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            message = error.response.get("Error", {}).get("Message", "") or "no message"
            reason = f"HTTP {status} {_error_code(error)}: {message}"
        else:
            reason = f"{type(error).__name__}: {error}"
        return BackendError(
            f"S3 {operation} of {subject} {key!r} in bucket {self.bucket!r} at {where} failed: {reason}"
        )


def _content_md5(data: bytes) -> str:
    """Base64 MD5 for the Content-MD5 header: lets the server refuse a body corrupted in transit."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
