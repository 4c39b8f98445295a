"""Injected faults: each is a clear 503 for the model concerned; the process recovers by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest

from functions.core.repository import Repository
from functions.stores import LocalStore, open_store
from tests.conftest import (
    ROOT,
    LiveServer,
    MotoServer,
    free_port,
    publish,
    runtime_for,
    settings_for,
)
from tests.models import fixed_shape, multi_io
from tests.proxy import Proxy
from tests.throttle import Throttle

INFER = {
    "inputs": [
        {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "ids", "shape": [1], "datatype": "INT64", "data": [1]},
    ]
}
FIXED = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [0.0] * 6}]}


@pytest.fixture
def s3_models(moto_server: MotoServer) -> str:
    """A models bucket on moto with `multi` (alias prod) and `fixed` published."""
    bucket = f"maas-faults-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    repo = Repository(open_store(f"s3://{bucket}"))
    publish(repo, "multi", multi_io(), alias="prod")
    publish(repo, "fixed", fixed_shape())
    return bucket


def serve(
    store: str, cache: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str | None = None
) -> LiveServer:
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    settings = settings_for(store, cache, alias_ttl_seconds=0)
    return LiveServer(runtime_for(settings))


def test_s3_down_at_cold_start_then_recovered(
    s3_models: str, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Proxy(moto_server.port)  # not up yet: S3 is unreachable from the start
    with (
        serve(f"s3://{s3_models}", tmp_path, monkeypatch, proxy.url) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        down = client.post("/v2/models/multi/infer", json=INFER)
        assert down.status_code == 503
        assert down.json()["error"].startswith(
            "model 'multi': the model store is unavailable: S3 unreachable"
        )
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
        proxy.up()
        try:
            assert client.post("/v2/models/multi/infer", json=INFER).status_code == 200
            assert client.get("/v2/health/ready").status_code == 200
        finally:
            proxy.down()


def test_s3_down_mid_life_serves_loaded_models_and_refuses_others(
    s3_models: str, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        Proxy(moto_server.port) as proxy,
        serve(f"s3://{s3_models}", tmp_path, monkeypatch, proxy.url) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        assert client.post("/v2/models/multi/versions/1/infer", json=INFER).status_code == 200
        proxy.down()
        # A loaded version keeps serving from memory; a model never loaded is refused with the reason
        assert client.post("/v2/models/multi/versions/1/infer", json=INFER).status_code == 200
        refused = client.post("/v2/models/fixed/infer", json=FIXED)
        assert (
            refused.status_code == 503
            and "the model store is unavailable" in refused.json()["error"]
        )
        proxy.up()
        assert client.post("/v2/models/fixed/infer", json=FIXED).status_code == 200


def test_s3_throttling_is_a_503_and_recovers(
    s3_models: str, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle = Throttle(moto_server.url)
    with LiveServer(app=throttle.app) as front:
        with (
            serve(f"s3://{s3_models}", tmp_path, monkeypatch, front.url) as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            throttle.throttling = True
            slowed = client.post("/v2/models/multi/infer", json=INFER)
            assert slowed.status_code == 503
            assert "S3 SlowDown" in slowed.json()["error"]
            assert throttle.refused >= 2  # botocore retried before giving up
            throttle.throttling = False
            assert client.post("/v2/models/multi/infer", json=INFER).status_code == 200


@pytest.mark.parametrize(
    ("damage", "status", "message"),
    [
        ("truncate", 503, "model.onnx is 100 bytes where the manifest records"),
        ("drop-manifest", 404, "model 'multi' has no version 1"),
        ("bad-manifest", 503, "manifest of 'multi' version 1 is not JSON"),
        ("foreign-manifest", 503, "manifest at 'multi' version 1 describes 'fixed' version 1"),
    ],
)
def test_damaged_artifacts_and_manifests(
    tmp_path: Path, damage: str, status: int, message: str
) -> None:
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "multi", multi_io())
    publish(repo, "multi", multi_io())  # version 2 stays intact
    publish(repo, "fixed", fixed_shape())
    version_dir = tmp_path / "store" / "models" / "multi" / "1"
    if damage == "truncate":
        artifact = version_dir / "model.onnx"
        artifact.write_bytes(artifact.read_bytes()[:100])
    elif damage == "drop-manifest":
        (version_dir / "manifest.json").unlink()
    elif damage == "bad-manifest":
        (version_dir / "manifest.json").write_text("{not json")
    else:
        (version_dir / "manifest.json").write_bytes(
            (tmp_path / "store" / "models" / "fixed" / "1" / "manifest.json").read_bytes()
        )
    settings = settings_for(str(tmp_path / "store"), tmp_path / "cache")
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.post("/v2/models/multi/versions/1/infer", json=INFER)
        assert response.status_code == status
        assert message in response.json()["error"]
        # never another model or version in its place, and the rest keep serving
        assert (
            client.post("/v2/models/multi/versions/2/infer", json=INFER).json()["model_version"]
            == "2"
        )
        assert client.post("/v2/models/fixed/infer", json=FIXED).status_code == 200


def test_an_unusable_cache_is_a_503_and_recovers(tmp_path: Path, bucket: str) -> None:
    # (an S3 store: a local store's files are verified in place, and need no cache)
    repo = Repository(open_store(f"s3://{bucket}"))
    publish(repo, "multi", multi_io())
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    settings = settings_for(f"s3://{bucket}", blocker)
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.post("/v2/models/multi/infer", json=INFER)
        assert response.status_code == 503
        assert response.json()["error"].startswith(
            f"model 'multi' version 1: artifact cache {blocker} is unusable"
        )
        blocker.unlink()
        assert client.post("/v2/models/multi/infer", json=INFER).status_code == 200


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of a signal, as on a full disk
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, hard))
from functions.settings import Settings
from functions.core.errors import ModelUnavailable
from functions.runtime import build_runtime
registry = build_runtime(Settings(store=sys.argv[1], cache_dir=sys.argv[2])).registry
try:
    registry.runner("big", "1")
except ModelUnavailable as exc:
    print("refused:", exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the disk has room again
print("recovered:", registry.runner("big", "1").manifest.name)
"""


def test_a_full_cache_disk_is_a_clear_refusal_then_recovers(tmp_path: Path, bucket: str) -> None:
    from model_build.examples.mlp import build_mlp

    repo = Repository(open_store(f"s3://{bucket}"))  # downloaded: a local store is read in place
    publish(repo, "big", build_mlp())  # 2.7 MB: more than the 64 KB the process may write
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, f"s3://{bucket}", str(tmp_path / "cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("{")]  # no logs
    refusal = (
        "refused: model 'big' version 1: cannot write the artifact cache: [Errno 27] File too large"
    )
    assert lines[0].startswith(refusal)
    assert lines[1] == "recovered: big"
    assert not list((tmp_path / "cache").glob("*.part"))  # no half-written file left behind
