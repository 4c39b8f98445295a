"""One contract, two backends: LocalStore on disk and S3Store against moto's S3 server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest

from functions.core.cache import ArtifactCache
from functions.core.errors import ObjectExists, ObjectNotFound, StoreUnavailable
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.core.store import Store
from functions.stores import LocalStore, StoreURIError, open_store
from functions.stores.s3 import S3Store
from tests import models
from tests.conftest import MotoServer, publish


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        bucket = request.getfixturevalue("bucket")
        yield open_store(f"s3://{bucket}/team/a")


def test_read_write_list(store: Store) -> None:
    store.write("models/a/1/manifest.json", b"{}")
    store.write("models/a/aliases/prod", b"1\n")
    store.write("models/b/1/model.onnx", b"onnx")
    assert store.read("models/a/aliases/prod") == b"1\n"
    assert list(store.list("models/a/")) == ["models/a/1/manifest.json", "models/a/aliases/prod"]
    store.write("models/a/aliases/prod", b"2\n")
    assert store.read("models/a/aliases/prod") == b"2\n"
    with pytest.raises(ObjectNotFound):
        store.read("models/a/aliases/staging")


def test_create_never_overwrites(store: Store) -> None:
    store.create("models/a/1/model.onnx", b"first")
    with pytest.raises(ObjectExists):
        store.create("models/a/1/model.onnx", b"second")
    assert store.read("models/a/1/model.onnx") == b"first"


def test_download_streams_to_a_file_and_hashes_it_on_the_way(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.stores import s3

    data = bytes(range(256)) * 10_000
    store.write("big", data)
    assert store.download("big", tmp_path / "copy") == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "copy").read_bytes() == data
    # Given its size, a large object comes in ranged parts, written and hashed in order
    monkeypatch.setattr(s3, "PARALLEL_FROM", 100_000)
    monkeypatch.setattr(store, "part_bytes", 300_000, raising=False)  # 9 parts (S3)
    digest = store.download("big", tmp_path / "ranged", size=len(data))
    assert (tmp_path / "ranged").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    with pytest.raises(ObjectNotFound):
        store.download("missing", tmp_path / "none")


def test_upload_streams_a_file_in(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 3_000_000)
    store.upload("models/a/1/weights.bin", source)
    assert store.read("models/a/1/weights.bin") == source.read_bytes()


def test_missing_keys(store: Store) -> None:
    with pytest.raises(ObjectNotFound):
        store.read("models/x/1/manifest.json")
    assert list(store.list("models/x/")) == []


def test_s3_store_uses_the_endpoint_from_the_environment(
    bucket: str, moto_server: MotoServer
) -> None:
    store = open_store(f"s3://{bucket}/prefix")
    assert isinstance(store, S3Store)
    assert store.client.meta.endpoint_url == moto_server.url
    store.write("k", b"v")
    # The prefix is honoured: the object is at prefix/k in the bucket
    body = boto3.client("s3").get_object(Bucket=bucket, Key="prefix/k")["Body"].read()
    assert body == b"v"


def test_s3_store_down_is_unavailable_not_missing(moto_server: MotoServer) -> None:
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, retries={"max_attempts": 1}),
    )
    store = S3Store(bucket="nowhere", client=client)
    with pytest.raises(StoreUnavailable, match="S3 unreachable for k"):
        store.read("k")


def test_serving_from_s3_end_to_end(bucket: str, tmp_path: Path) -> None:
    # Given a model published to S3 (through the production S3Store)
    repo = Repository(open_store(f"s3://{bucket}/models-root"))
    publish(repo, "multi", models.multi_io(), alias="prod")
    registry = Registry(
        repository=repo,
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
    )
    # When it is served by alias
    out = registry.runner("multi", "prod").run(
        [("features", np.ones((2, 4), np.float32)), ("ids", np.array([1, 2], np.int64))]
    )
    # Then the artifact was fetched, verified and cached in a folder named by its sha256
    assert out["next_ids"].tolist() == [2, 3]
    sha256 = repo.manifest("multi", 1).sha256
    assert (tmp_path / "cache" / sha256 / "model.onnx").exists()


@pytest.mark.parametrize(
    ("uri", "kind"),
    [("file:///tmp/x", LocalStore), ("./relative/store", LocalStore), ("s3://bucket/p", S3Store)],
)
def test_open_store(uri: str, kind: type, moto_server: MotoServer) -> None:
    assert isinstance(open_store(uri), kind)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "http://example.com/x",
            "unsupported store URI 'http://example.com/x': use file:///path or s3://bucket/prefix",
        ),
        ("s3:///prefix", "store URI 's3:///prefix' names no bucket (expected s3://bucket/prefix)"),
    ],
)
def test_bad_store_uris(uri: str, message: str) -> None:
    with pytest.raises(StoreURIError) as caught:
        open_store(uri)
    assert str(caught.value) == message


def test_local_store_refuses_keys_that_escape_its_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for key in ("../outside", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ObjectNotFound, match="invalid key"):
            store.read(key)
