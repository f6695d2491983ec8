"""One contract for every Mirror Store object backend: the laws of ``realworld.store.backend.ObjectBackend``.

Each test runs against the filesystem backend and against the S3 backend talking HTTP to a real moto
S3 server, so the store can swap backends without changing behaviour.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realworld.store.backend import ObjectBackend
from realworld.store.s3_backend import S3Backend
from tests.servers.moto_s3_server import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    MotoS3Server,
    running_moto_s3_server,
)

BackendFactory = Callable[[], ObjectBackend]

SMALL_LIST_PAGE = 7
"""The S3 backend lists in pages of 7 keys here, so every listing test also exercises continuation tokens."""


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3Server]:
    with running_moto_s3_server() as server:
        yield server


@pytest.fixture(params=["fs", "s3"])
def make_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BackendFactory:
    """A factory of fresh, empty backends of one kind (a factory so Hypothesis examples start empty)."""
    if request.param == "fs":
        fs_backend = pytest.importorskip("realworld.store.fs_backend", reason="filesystem backend not on this branch")

        def make_fs() -> ObjectBackend:
            root: Path = tmp_path_factory.mktemp("fs-backend")
            return fs_backend.FileSystemBackend(root)

        return make_fs

    server: MotoS3Server = request.getfixturevalue("moto_s3")

    def make_s3() -> ObjectBackend:
        return S3Backend(
            server.new_bucket(),
            endpoint_url=server.endpoint_url,
            region=TEST_REGION,
            access_key=TEST_ACCESS_KEY,
            secret_key=TEST_SECRET_KEY,
            list_page_size=SMALL_LIST_PAGE,
        )

    return make_s3


@pytest.fixture
def backend(make_backend: BackendFactory) -> ObjectBackend:
    return make_backend()


def test_put_then_get_round_trips(backend: ObjectBackend) -> None:
    backend.put("manifests/vm-1/0001", b"manifest bytes")
    assert backend.get("manifests/vm-1/0001") == b"manifest bytes"
    assert backend.exists("manifests/vm-1/0001")


def test_overwrite_replaces_the_whole_object(backend: ObjectBackend) -> None:
    backend.put("manifests/latest", b"a much longer first version of the manifest")
    backend.put("manifests/latest", b"short")
    assert backend.get("manifests/latest") == b"short"
    assert backend.size("manifests/latest") == 5


def test_put_if_absent_writes_once_and_never_changes_the_content(backend: ObjectBackend) -> None:
    assert backend.put_if_absent("chunks/ab/abcdef", b"first") is True
    assert backend.put_if_absent("chunks/ab/abcdef", b"second") is False
    assert backend.get("chunks/ab/abcdef") == b"first"


def test_delete_is_idempotent(backend: ObjectBackend) -> None:
    backend.delete("never/written")
    backend.put("chunks/x", b"data")
    backend.delete("chunks/x")
    backend.delete("chunks/x")
    assert not backend.exists("chunks/x")
    with pytest.raises(KeyError):
        backend.get("chunks/x")


def test_list_is_sorted_and_filtered_by_prefix(backend: ObjectBackend) -> None:
    keys = ["chunks/b2", "manifests/m1", "chunks/a1", "chunks/A0", "chunksx/z", "chunks/sub/c3", "chunks/0"]
    for key in keys:
        backend.put(key, key.encode())
    assert list(backend.list("chunks/")) == sorted(k for k in keys if k.startswith("chunks/"))
    assert list(backend.list("chunks")) == sorted(k for k in keys if k.startswith("chunks"))
    assert list(backend.list("")) == sorted(keys)
    assert list(backend.list("nothing/")) == []


def test_list_returns_every_key_across_pages(backend: ObjectBackend) -> None:
    keys = [f"chunks/{index:04d}" for index in range(3 * SMALL_LIST_PAGE + 2)]
    for key in reversed(keys):
        backend.put(key, b"x")
    assert list(backend.list("chunks/")) == keys


@pytest.mark.slow
def test_list_returns_more_than_a_thousand_keys(make_backend: BackendFactory, moto_s3: MotoS3Server) -> None:
    """S3 caps one ListObjectsV2 page at 1,000 keys; the backend must follow the continuation token."""
    backend = make_backend()
    list_requests: list[str] = []
    if isinstance(backend, S3Backend):
        backend = S3Backend(backend.bucket, endpoint_url=backend.endpoint_url, client=backend._client)
        assert backend.list_page_size == 1000
        backend._client.meta.events.register(
            "before-call.s3.ListObjectsV2", lambda **_: list_requests.append("ListObjectsV2")
        )
    keys = [f"chunks/{index:05d}" for index in range(1_050)]
    for key in keys:
        backend.put(key, b"")
    assert list(backend.list("chunks/")) == keys
    if isinstance(backend, S3Backend):
        assert len(list_requests) == 2  # the server cut the listing at 1,000 and the token fetched the rest


def test_size_is_the_stored_byte_count(backend: ObjectBackend) -> None:
    backend.put("chunks/sized", b"12345678")
    assert backend.size("chunks/sized") == 8


@pytest.mark.parametrize("operation", ["get", "size"])
def test_absent_key_raises_key_error_naming_the_key(backend: ObjectBackend, operation: str) -> None:
    with pytest.raises(KeyError) as raised:
        getattr(backend, operation)("chunks/absent")
    assert raised.value.args == ("chunks/absent",)
    assert backend.exists("chunks/absent") is False


INVALID_KEYS = [
    "",
    "/absolute",
    "chunks//double-slash",
    "chunks/",
    "..",
    "chunks/../escape",
    "./here",
    ".hidden",
    "has space",
    "back\\slash",
    "colon:name",
    "ключ",
    "nul\x00byte",
    "x" * 129,
]


@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
@pytest.mark.parametrize("operation", ["put", "put_if_absent", "get", "exists", "delete", "size"])
def test_invalid_keys_are_rejected_with_value_error(backend: ObjectBackend, key: str, operation: str) -> None:
    arguments: tuple[object, ...] = (key, b"data") if operation.startswith("put") else (key,)
    with pytest.raises(ValueError, match="key"):
        getattr(backend, operation)(*arguments)
    assert list(backend.list("")) == []


def test_longest_valid_segment_is_accepted(backend: ObjectBackend) -> None:
    key = "chunks/" + "a" * 128
    backend.put(key, b"ok")
    assert backend.get(key) == b"ok"


def test_binary_data_with_every_byte_value_survives(backend: ObjectBackend) -> None:
    data = bytes(range(256)) * 3 + bytes(reversed(range(256)))
    backend.put("chunks/binary", data)
    assert backend.get("chunks/binary") == data
    assert backend.size("chunks/binary") == len(data)


def test_empty_object_is_an_object(backend: ObjectBackend) -> None:
    assert backend.put_if_absent("chunks/empty", b"") is True
    assert backend.exists("chunks/empty")
    assert backend.get("chunks/empty") == b""
    assert backend.size("chunks/empty") == 0
    assert list(backend.list("chunks/")) == ["chunks/empty"]


MODEL_KEYS = ["chunks/a", "chunks/b", "chunks/sub/c", "manifests/m"]
operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "put_if_absent", "delete"]),
        st.sampled_from(MODEL_KEYS),
        st.binary(max_size=64),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_backend_agrees_with_a_dict_model_at_every_step(make_backend: BackendFactory, steps: list) -> None:
    backend = make_backend()
    model: dict[str, bytes] = {}
    for operation, key, data in steps:
        if operation == "put":
            backend.put(key, data)
            model[key] = data
        elif operation == "put_if_absent":
            assert backend.put_if_absent(key, data) is (key not in model)
            model.setdefault(key, data)
        else:
            backend.delete(key)
            model.pop(key, None)
        assert list(backend.list("")) == sorted(model)
        for probe in MODEL_KEYS:
            assert backend.exists(probe) is (probe in model)
        for present in model:
            assert backend.get(present) == model[present]
            assert backend.size(present) == len(model[present])
    assert list(itertools.chain(backend.list("chunks/"), backend.list("manifests/"))) == sorted(model)
