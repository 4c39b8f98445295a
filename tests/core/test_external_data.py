"""Artifacts with external data: published in every layout onnx writes, loaded in place, checked.

The models are generated on the fly (an embedding table in external data, `model_build/examples/
large.py`) in the test's temporary folder, which pytest deletes.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
from typer.testing import CliRunner

from functions.api.handler import handle
from functions.core.errors import ManifestError, ModelUnavailable
from functions.core.manifest import Manifest
from functions.core.observe import ModelLoad
from functions.core.repository import Repository
from functions.runtime import Runtime
from functions.stores import LocalStore, open_store
from model_build.cli import app
from model_build.examples.large import embedding_rows, sample_ids, write_embedding_model
from model_build.inspect_onnx import ArtifactError, artifact_from_file
from model_build.lambda_local import LocalContext, api_event
from tests.conftest import LiveServer, runtime_for, settings_for

MB = 1 << 20


def raw_scores(graph: Path, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"ids": ids})[0])


def infer_body(ids: np.ndarray) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "ids", "shape": list(ids.shape), "datatype": "INT64", "data": ids}]},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def through_handler(runtime: Runtime, name: str, ids: np.ndarray) -> np.ndarray:
    event: Any = api_event(f"/v2/models/{name}/infer", infer_body(ids))
    response = handle(runtime, event, LocalContext())
    assert response["statusCode"] == 200, response["body"]
    body = response["body"]
    doc = orjson.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)
    output = doc["outputs"][0]
    return np.asarray(output["data"], np.float32).reshape(output["shape"])


def publish_cli(model: Path, store: str, name: str, *extra: str) -> int:
    result = CliRunner().invoke(
        app, ["publish", str(model), "--name", name, "--store", store, *extra]
    )
    assert result.exit_code == 0, result.output
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layout", ["one", "many", "nested"])
def test_every_layout_is_published_and_served_equal_to_raw_onnxruntime(
    tmp_path: Path, layout: str
) -> None:
    # Given a model whose tensors live in external data files, laid out as onnx writes them
    graph = write_embedding_model(tmp_path / "model", table_bytes=2 * MB, layout=layout)  # type: ignore[arg-type]
    ids = sample_ids(embedding_rows(graph), batch=3)
    store = str(tmp_path / "store")
    # When it is published with the CLI
    version = publish_cli(graph, store, "emb")
    # Then the manifest lists every file, with its size and sha256
    manifest = Repository(open_store(store)).manifest("emb", version)
    listed = {f.path: f.size_bytes for f in manifest.files}
    on_disk = {
        p.relative_to(graph.parent).as_posix(): p.stat().st_size
        for p in graph.parent.rglob("*")
        if p.is_file()
    }
    assert listed == on_disk
    assert manifest.total_bytes == sum(on_disk.values())
    # And the Lambda handler serves it equal to raw onnxruntime, from the store's own files:
    # a local store's files are verified where they are, not copied into the cache
    runtime = runtime_for(settings_for(store, tmp_path / "cache"))
    np.testing.assert_allclose(
        through_handler(runtime, "emb", ids), raw_scores(graph, ids), rtol=1e-6
    )
    served = runtime.registry.cache.fetch(runtime.registry.repository.store, manifest)
    assert served == tmp_path / "store" / "models" / "emb" / str(version) / "model.onnx"
    assert not runtime.registry.cache.path(manifest).parent.exists()


def test_external_data_through_the_s3_store_and_maas_serve(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.stores import s3

    # Small parts, so a 12 MB table comes in ranged GETs (and goes up in a multipart PUT)
    monkeypatch.setattr(s3, "PARALLEL_FROM", 1 * MB)
    graph = write_embedding_model(tmp_path / "model", table_bytes=12 * MB, layout="nested")
    ids = sample_ids(embedding_rows(graph), batch=4)
    store = f"s3://{bucket}/models-store"
    version = publish_cli(graph, store, "emb")
    runtime = runtime_for(settings_for(store, tmp_path / "cache", s3_part_mb=5))
    assert runtime.registry.repository.store.part_bytes == 5 * MB  # type: ignore[attr-defined]
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url) as client:
        response = client.post(
            f"/v2/models/emb/versions/{version}/infer",
            content=infer_body(ids),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    served = np.asarray(output["data"], np.float32).reshape(output["shape"])
    np.testing.assert_allclose(served, raw_scores(graph, ids), rtol=1e-6)
    # The files were downloaded into the cache, in the layout the manifest lists
    cached = runtime.registry.cache.path(runtime.registry.manifest("emb", str(version))).parent
    assert {
        p.relative_to(cached).as_posix(): p.read_bytes() for p in cached.rglob("*") if p.is_file()
    } == {
        p.relative_to(graph.parent).as_posix(): p.read_bytes()
        for p in graph.parent.rglob("*")
        if p.is_file()
    }


def test_a_single_file_model_is_converted_on_publish(tmp_path: Path) -> None:
    graph = write_embedding_model(tmp_path / "ext", table_bytes=1 * MB)
    import onnx

    single = tmp_path / "single.onnx"
    onnx.save_model(onnx.load(str(graph)), str(single))  # weights inlined: one file
    store = str(tmp_path / "store")
    version = publish_cli(single, store, "emb", "--external-data", "64KB")
    manifest = Repository(open_store(store)).manifest("emb", version)
    assert [f.path for f in manifest.files] == ["model.onnx", "model.onnx.data"]
    assert manifest.size_bytes < 4096  # the graph alone; the table moved to the data file
    ids = sample_ids(embedding_rows(graph), batch=2)
    runtime = runtime_for(settings_for(store, tmp_path / "cache"))
    np.testing.assert_allclose(
        through_handler(runtime, "emb", ids), raw_scores(graph, ids), rtol=1e-6
    )


# -- refused at publish -------------------------------------------------------------------------


def _relocate(graph: Path, location: str) -> None:
    """Point every external tensor of `graph` at `location` (as a hostile file would)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    graph.write_bytes(model.SerializeToString())


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("/etc/passwd", "is absolute"),
        ("../outside.data", "leaves or does not name a file"),
        ("weights/../../outside.data", "leaves or does not name a file"),
    ],
)
def test_locations_outside_the_folder_are_refused_at_publish(
    tmp_path: Path, location: str, message: str
) -> None:
    graph = write_embedding_model(tmp_path / "model", table_bytes=MB)
    (tmp_path / "outside.data").write_bytes((graph.parent / "model.onnx.data").read_bytes())
    _relocate(graph, location)
    with pytest.raises(ArtifactError, match=message) as caught:
        artifact_from_file(graph, name="emb")
    assert repr(location) in str(caught.value)


def test_a_symbolic_link_among_the_data_files_is_refused_at_publish(tmp_path: Path) -> None:
    graph = write_embedding_model(tmp_path / "model", table_bytes=MB)
    data = graph.parent / "model.onnx.data"
    data.rename(tmp_path / "elsewhere.data")
    data.symlink_to(tmp_path / "elsewhere.data")
    with pytest.raises(ArtifactError, match="symbolic link") as caught:
        artifact_from_file(graph, name="emb")
    assert "'model.onnx.data'" in str(caught.value)


def test_a_missing_data_file_is_named_at_publish(tmp_path: Path) -> None:
    graph = write_embedding_model(tmp_path / "model", table_bytes=MB, layout="many")
    (graph.parent / "w2").unlink()
    with pytest.raises(ArtifactError, match="external data file 'w2' is missing"):
        artifact_from_file(graph, name="emb")


# -- refused at load: the store is not trusted --------------------------------------------------


def _published(tmp_path: Path, store: str | None = None) -> tuple[Repository, Manifest, Path]:
    """The embedding model published to `store` (a local folder in `tmp_path` by default)."""
    graph = write_embedding_model(tmp_path / "model", table_bytes=MB)
    repo = Repository(open_store(store) if store else LocalStore(tmp_path / "store"))
    artifact = artifact_from_file(graph, name="emb")
    return repo, repo.publish(artifact.manifest, artifact.graph, artifact.data), graph


def _rewrite_manifest(repo: Repository, manifest: Manifest, **changes: Any) -> None:
    doc = manifest.to_dict()
    doc.update(changes)
    repo.store.write(f"models/emb/{manifest.version}/manifest.json", orjson.dumps(doc))


@pytest.mark.parametrize("location", ["../../../../etc/passwd", "/etc/passwd", "a/./b"])
def test_a_manifest_naming_a_file_outside_the_version_is_refused_at_load(
    tmp_path: Path, location: str
) -> None:
    repo, manifest, _ = _published(tmp_path)
    files = manifest.to_dict()["files"]
    files[1]["path"] = location
    _rewrite_manifest(repo, manifest, files=files)
    with pytest.raises(ManifestError, match="artifact file location"):
        repo.manifest("emb", manifest.version)
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    event: Any = api_event("/v2/models/emb/infer", infer_body(sample_ids(16, 1)))
    response = handle(runtime, event, LocalContext())
    assert response["statusCode"] == 503
    assert repr(location) in orjson.loads(response["body"])["error"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_symbolic_link_in_a_local_store_is_refused_at_load(tmp_path: Path) -> None:
    repo, manifest, _ = _published(tmp_path)
    stored = tmp_path / "store" / "models" / "emb" / "1" / "model.onnx.data"
    secret = tmp_path / "secret.data"
    stored.rename(secret)
    stored.symlink_to(secret)
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    with pytest.raises(ModelUnavailable, match="model.onnx.data.*symbolic link"):
        runtime.registry.runner("emb", "1")


def test_a_graph_whose_locations_leave_the_folder_is_refused_at_load(tmp_path: Path) -> None:
    # Given a graph that points outside, published behind the CLI's back with a correct manifest
    repo, manifest, graph = _published(tmp_path)
    _relocate(graph, "../../../outside.data")
    hostile = graph.read_bytes()
    import hashlib

    key = f"models/emb/{manifest.version}/model.onnx"
    repo.store.write(key, hostile)
    _rewrite_manifest(
        repo,
        manifest,
        sha256=hashlib.sha256(hostile).hexdigest(),
        size_bytes=len(hostile),
        files=[
            {
                "path": "model.onnx",
                "size_bytes": len(hostile),
                "sha256": hashlib.sha256(hostile).hexdigest(),
            },
            *manifest.to_dict()["files"][1:],
        ],
    )
    (tmp_path / "outside.data").write_bytes(b"\0" * 64)
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    # Then onnxruntime, opening the graph in the store's folder, refuses to follow it
    with pytest.raises(ModelUnavailable, match="cannot be loaded.*escapes"):
        runtime.registry.runner("emb", "1")


def test_a_link_beside_the_files_of_a_local_store_is_refused_at_load(tmp_path: Path) -> None:
    # Given a link the manifest does not list, left in the version's folder of a local store
    # (where a graph whose manifest was rewritten could name it: sessions open in that folder)
    _published(tmp_path)
    (tmp_path / "secret.data").write_bytes(b"\0" * 64)
    (tmp_path / "store" / "models" / "emb" / "1" / "extra.data").symlink_to(
        tmp_path / "secret.data"
    )
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    with pytest.raises(ModelUnavailable, match="extra.data is a symbolic link"):
        runtime.registry.runner("emb", "1")


def test_a_tampered_data_file_is_refused_naming_it(tmp_path: Path) -> None:
    repo, manifest, _ = _published(tmp_path)
    stored = tmp_path / "store" / "models" / "emb" / "1" / "model.onnx.data"
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    with pytest.raises(
        ModelUnavailable, match="model.onnx.data does not match the manifest .* refusing"
    ):
        runtime.registry.runner("emb", "1")
    assert not list((tmp_path / "cache").glob("*.part"))


# -- limits, before any download ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"memory_mb": 1}, r"of memory, .* short \(give the function more memory"),
        (
            {"cache_max_mb": 1},
            r"the cache's 0\.00 GB leaves .* short \(raise the function's ephemeral",
        ),
    ],
)
def test_a_model_too_large_for_the_function_is_a_503_before_any_download(
    tmp_path: Path, bucket: str, extra: dict[str, int], message: str
) -> None:
    _published(tmp_path, f"s3://{bucket}")
    runtime = runtime_for(settings_for(f"s3://{bucket}", tmp_path / "cache", **extra))
    event: Any = api_event("/v2/models/emb/infer", infer_body(sample_ids(16, 1)))
    response = handle(runtime, event, LocalContext())
    assert response["statusCode"] == 503
    assert __import__("re").search(message, orjson.loads(response["body"])["error"])
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]


# -- the cache: verified once, trusted while untouched --------------------------------------------


def _no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.core import digests

    def no_hashing(algorithm: str, **_: object) -> digests.Digest:
        raise AssertionError("a verified, untouched file was hashed again")

    monkeypatch.setattr(digests, "new", no_hashing)


def _flip_first_byte(path: Path) -> None:
    """The same size, one byte changed, and an mtime that says nothing (set back)."""
    content = bytearray(path.read_bytes())
    content[0] ^= 1
    path.write_bytes(bytes(content))
    os.utime(path, ns=(1, 1))


def test_a_downloaded_folder_is_reused_without_reading_it_and_refetched_when_touched(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, manifest, graph = _published(tmp_path, f"s3://{bucket}")
    settings = settings_for(f"s3://{bucket}", tmp_path / "cache")
    first = runtime_for(settings).registry
    first.runner("emb", "1")
    # A second process in the same environment finds the folder as it was verified
    second = runtime_for(settings)
    with monkeypatch.context() as patched:
        _no_hashing(patched)
        path = second.registry.cache.fetch(repo.store, manifest)
    assert path == first.cache.path(manifest)
    # A file changed since (same size: a flipped byte) is noticed, and the artifact fetched anew
    data = path.parent / "model.onnx.data"
    _flip_first_byte(data)
    second.registry.cache.fetch(repo.store, manifest)
    assert data.read_bytes() == (graph.parent / "model.onnx.data").read_bytes()


def test_a_download_is_timed_and_a_tampered_object_is_refused_with_nothing_left(
    tmp_path: Path, bucket: str
) -> None:
    repo, manifest, _ = _published(tmp_path, f"s3://{bucket}")
    settings = settings_for(f"s3://{bucket}", tmp_path / "cache")
    loads: list[ModelLoad] = []
    registry = runtime_for(settings).registry
    registry.observer = _recording(loads)
    registry.runner("emb", "1")
    assert (loads[0].in_place, loads[0].download_seconds > 0) == (False, True)
    # The same-size object altered in the bucket: a new environment downloads it and refuses it
    key = f"models/emb/{manifest.version}/model.onnx.data"
    content = bytearray(repo.store.read(key))
    content[-1] ^= 1
    repo.store.write(key, bytes(content))
    with pytest.raises(ModelUnavailable, match="model.onnx.data does not match the manifest"):
        runtime_for(settings_for(f"s3://{bucket}", tmp_path / "other")).registry.runner("emb", "1")
    assert not [p for p in (tmp_path / "other").rglob("*") if p.is_file()]


def test_a_local_store_is_verified_in_place_once_and_again_when_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, manifest, _ = _published(tmp_path)
    # A cache allowed 1 MB of disk still serves the 1 MB model: nothing is copied into it
    settings = settings_for(str(tmp_path / "store"), tmp_path / "cache", cache_max_mb=1)
    loads: list[ModelLoad] = []
    first = runtime_for(settings).registry
    first.observer = _recording(loads)
    first.runner("emb", "1")
    assert (loads[0].in_place, loads[0].cached, loads[0].download_seconds) == (True, False, 0)
    assert loads[0].verify_seconds > 0
    stored = tmp_path / "store" / "models" / "emb" / "1"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"{manifest.artifact_id}.verified.json"
    ]
    # A second process trusts the untouched files without reading them again
    second = runtime_for(settings)
    with monkeypatch.context() as patched:
        _no_hashing(patched)
        assert second.registry.cache.fetch(repo.store, manifest) == stored / "model.onnx"
    # A store file changed since, its mtime put back as it was (`cp -p` does), is noticed
    data = stored / "model.onnx.data"
    before = data.stat()
    content = bytearray(data.read_bytes())
    content[0] ^= 1
    data.write_bytes(bytes(content))
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ModelUnavailable, match="model.onnx.data does not match the manifest"):
        runtime_for(settings).registry.runner("emb", "1")


def _recording(loads: list[ModelLoad]) -> Any:
    from contextlib import contextmanager

    class Recorder:
        @contextmanager
        def loading(self, load: ModelLoad) -> Any:
            yield load
            loads.append(load)

    return Recorder()


def test_publish_warns_when_the_model_cannot_fit_its_target(tmp_path: Path) -> None:
    from dataclasses import replace

    from functions.core.manifest import ArtifactFile
    from model_build.inspect_onnx import fit_warnings

    _, manifest, _ = _published(tmp_path)
    assert fit_warnings(manifest) == []

    def sized(gigabytes: float, target: str = "cpu") -> Manifest:
        weights = ArtifactFile("model.onnx.data", int(gigabytes * 1e9), "0" * 64)
        return replace(manifest, data_files=(weights,), target=target)

    assert "maas:apiMemoryMb" in fit_warnings(sized(2.46))[0]
    assert "--target gpu" in fit_warnings(sized(12))[0]
    assert fit_warnings(sized(12, target="gpu")) == []


def test_files_published_before_blake3_are_verified_with_sha256(tmp_path: Path) -> None:
    # Given a version whose manifest predates BLAKE3 (sha256 only), as older publishes wrote it
    repo, manifest, graph = _published(tmp_path)
    files = [
        {key: value for key, value in entry.items() if key != "blake3"}
        for entry in manifest.to_dict()["files"]
    ]
    _rewrite_manifest(repo, manifest, files=files)
    old = repo.manifest("emb", manifest.version)
    assert [f.check[0] for f in old.files] == ["sha256", "sha256"]
    # Then it loads, verified with sha256, and a damaged file is still refused
    runtime = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache"))
    ids = sample_ids(embedding_rows(graph), batch=2)
    np.testing.assert_allclose(
        through_handler(runtime, "emb", ids), raw_scores(graph, ids), rtol=1e-6
    )
    stored = tmp_path / "store" / "models" / "emb" / "1" / "model.onnx.data"
    data = bytearray(stored.read_bytes())
    data[7] ^= 1
    stored.write_bytes(bytes(data))
    fresh = runtime_for(settings_for(str(tmp_path / "store"), tmp_path / "cache2"))
    with pytest.raises(ModelUnavailable, match=r"does not match the manifest \(sha256 "):
        fresh.registry.runner("emb", "1")


def test_both_digests_are_recorded_and_match_the_bytes(tmp_path: Path) -> None:
    import hashlib

    from blake3 import blake3

    _, manifest, graph = _published(tmp_path)
    for each in manifest.files:
        content = (graph.parent / each.path).read_bytes()
        assert each.sha256 == hashlib.sha256(content).hexdigest()
        assert each.blake3 == blake3(content).hexdigest()
        assert each.check == ("blake3", each.blake3)
