"""The events/ payloads end to end, superseded objects, `maas batch`, memory and imports."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import boto3
import numpy as np
import orjson
import pytest

from functions.batch.faults import TransientFault
from functions.batch.job import run_job
from functions.core.cache import ArtifactCache
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.stores import LocalStore
from model_build.lambda_local import LocalContext
from tests.batch.conftest import Rig, load_handler, npy_bytes
from tests.conftest import EVENTS, ROOT, MotoServer, publish
from tests.model_build.test_cli import maas
from tests.models import multi_io

EVENT_BUCKET = "maas-batch-123456789012-us-east-1"
EVENT_KEY = "inputs/digits/prod/2026-11-22/résumé scans 1.csv"


@pytest.fixture
def event_bucket(moto_server: MotoServer) -> str:
    """The bucket the events/ files name, holding the object they describe."""
    s3 = boto3.client("s3")
    if EVENT_BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=EVENT_BUCKET)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=EVENT_BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=EVENT_BUCKET, Key=item["Key"])
    etag = s3.put_object(
        Bucket=EVENT_BUCKET, Key=EVENT_KEY, Body=(EVENTS / "data" / "digits-5.csv").read_bytes()
    )["ETag"]
    event = orjson.loads((EVENTS / "s3-put.json").read_bytes())
    assert etag.strip('"') == event["Records"][0]["s3"]["object"]["eTag"]
    return EVENT_BUCKET


def predictions(key: str) -> list[int]:
    body = boto3.client("s3").get_object(Bucket=EVENT_BUCKET, Key=key)["Body"].read()
    return [orjson.loads(line)["label"] for line in body.splitlines()]


@pytest.mark.parametrize("name", ["s3-put.json", "sqs-s3-put.json"])
def test_the_event_files_decode_keys_as_aws_encodes_them(
    name: str,
    event_bucket: str,
    models_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = load_handler(
        monkeypatch, MAAS_STORE=f"s3://{models_bucket}/store", MAAS_CACHE_DIR=str(tmp_path)
    )
    response = handler(orjson.loads((EVENTS / name).read_bytes()), LocalContext())
    output = "outputs/digits/1/2026-11-22/résumé scans 1.jsonl"
    if name == "s3-put.json":
        assert response == {"outcomes": [{"kind": "output", "key": output}]}
    else:
        assert response == {"batchItemFailures": []}
    assert predictions(output) == [0, 1, 2, 3, 4]  # the first five digits of the dataset


def test_a_direct_s3_event_fails_whole_on_a_transient_fault(
    event_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(
        monkeypatch, MAAS_STORE="s3://no-such-models-bucket/store", MAAS_CACHE_DIR=str(tmp_path)
    )
    with pytest.raises(TransientFault, match="the model store is unavailable"):
        handler(orjson.loads((EVENTS / "s3-put.json").read_bytes()), LocalContext())


def test_an_object_replaced_before_its_event_is_left_to_the_newer_event(rig: Rig) -> None:
    rig.upload("inputs/digits/prod/v.npy", npy_bytes(np.zeros((2, 64), np.float32)))
    rig.upload("inputs/digits/prod/v.npy", npy_bytes(np.ones((3, 64), np.float32)))
    _, response = rig.deliver(2)
    assert response == {"batchItemFailures": []}
    assert rig.json("outputs/digits/1/v.npy.summary.json")["rows"] == 3


def test_maas_invoke_runs_the_batch_handler(
    event_bucket: str, models_bucket: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    env = {"AWS_ENDPOINT_URL_S3": moto_server.url, "MAAS_CACHE_DIR": str(tmp_path)}
    event = str(EVENTS / "sqs-s3-put.json")
    # With the models store unreachable: the message is an item failure, exit 1
    failing = maas(
        "invoke", event, "--handler", "batch", "--store", "s3://no-such-bucket/x", env=env
    )
    assert failing.returncode == 1
    failures = orjson.loads(failing.stdout)["batchItemFailures"]
    assert failures == [{"itemIdentifier": "6f1c2b0e-3a4d-4c5b-9e8f-7a6b5c4d3e2f"}]
    # With the real store: processed, exit 0
    store = f"s3://{models_bucket}/store"
    result = maas("invoke", event, "--handler", "batch", "--store", store, env=env)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == {"batchItemFailures": []}


def test_maas_batch_on_local_files(served_store: Path, tmp_path: Path) -> None:
    ok = maas(
        "batch",
        str(EVENTS / "data" / "digits-5.csv"),
        "--model",
        "digits",
        "--version",
        "prod",
        "--store",
        str(served_store),
        "--out",
        str(tmp_path / "out.jsonl"),
        env={"MAAS_CACHE_DIR": str(tmp_path / "c")},
    )
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout)["rows"] == 5
    assert [
        orjson.loads(line)["label"] for line in (tmp_path / "out.jsonl").read_bytes().splitlines()
    ] == [0, 1, 2, 3, 4]
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"nope")
    failed = maas(
        "batch",
        str(bad),
        "--model",
        "digits",
        "--store",
        str(served_store),
        env={"MAAS_CACHE_DIR": str(tmp_path / "c")},
    )
    assert failed.returncode == 1
    # stderr: the runtime's JSON log lines (the model load), then the one-line error
    error = failed.stderr[failed.stderr.index("\nerror: ") + 1 :]
    assert error.startswith("error: the .npy file is not a valid .npy array")


def test_memory_stays_bounded_whatever_the_file_size(tmp_path: Path) -> None:
    # Given a 40 MB .npy for a two-input-free model... (multi takes features [-1, 4] and ids)
    repo = Repository(LocalStore(tmp_path / "store"))
    from tests.batch.conftest import npz_bytes

    publish(repo, "multi", multi_io())
    registry = Registry(
        repository=repo,
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
    )
    runner = registry.runner("multi", "1")
    rows = 1_000_000
    path = tmp_path / "big.npz"
    path.write_bytes(
        npz_bytes(features=np.ones((rows, 4), np.float32), ids=np.arange(rows, dtype=np.int64))
    )
    file_bytes = path.stat().st_size
    # When it is processed in chunks of 10,000 rows
    tracemalloc.start()
    with path.open("rb") as stream:
        stats = run_job(
            stream, suffix=".npz", runner=runner, out=tmp_path / "out.npz", chunk_rows=10_000
        )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Then the peak of Python-visible allocations is a small fraction of the file
    assert stats.rows == rows and stats.chunks == 100
    assert peak < file_bytes / 8, (peak, file_bytes)
    with np.load(tmp_path / "out.npz") as out:
        assert out["next_ids"][-1] == rows and out["scaled"].shape == (rows, 4)


def test_the_batch_handler_does_not_import_fastapi(tmp_path: Path) -> None:
    code = "import sys, functions.batch.handler; print(sorted(m for m in ('fastapi', 'mangum', 'starlette') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"MAAS_STORE": str(tmp_path), "PATH": "/usr/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
