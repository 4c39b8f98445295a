"""The GPU image's app (SageMaker contract, CUDA with CPU fallback) and the API's forwarding."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton

from functions.api.asgi import create_server_app
from functions.api.forward import SageMakerForwarder
from functions.container.serve import create_container_app
from functions.core.repository import Repository
from functions.runtime import build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.inspect_onnx import manifest_for
from tests.conftest import LiveServer, MotoServer, free_port, runtime_for
from tests.models import multi_io
from tests.sagemaker_runtime import ATTRIBUTES, runtime_app

FEATURES = np.arange(12, dtype=np.float32).reshape(3, 4)
IDS = np.array([7, 8, 9], dtype=np.int64)


def raw() -> dict[str, np.ndarray]:
    session = ort.InferenceSession(multi_io())
    return dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {"features": FEATURES, "ids": IDS}),
            strict=True,
        )
    )


def infer_body() -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "data": FEATURES.ravel().tolist(),
                },
                {"name": "ids", "shape": [3], "datatype": "INT64", "data": IDS.tolist()},
            ]
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with `heavy` published for the GPU and `light` for the CPU functions."""
    root = tmp_path_factory.mktemp("gpu-store")
    repo = Repository(LocalStore(root))
    artifact = multi_io()
    repo.publish(manifest_for(artifact, name="heavy", target="gpu")[0], artifact)
    repo.publish(manifest_for(artifact, name="light")[0], artifact)
    return root


@pytest.fixture(scope="module")
def container(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The GPU image's app, asked for CUDA: this onnxruntime has none, so the CPU serves."""
    settings = Settings(store=str(store), cache_dir=tmp_path_factory.mktemp("cache"), device="cuda")  # type: ignore[call-arg]
    with LiveServer(app=create_container_app(runtime_for(settings))) as server:
        yield server


def test_ping_and_the_execution_provider_in_use(container: LiveServer) -> None:
    assert httpx.get(f"{container.url}/ping").json() == {"status": "healthy"}
    ready = httpx.get(f"{container.url}/v2/models/heavy/ready").json()
    assert ready["execution_provider"] == "CPUExecutionProvider"  # CUDA asked, CPU fallback
    meta = httpx.get(f"{container.url}/v2/models/heavy").json()
    assert meta["parameters"] == {
        "target": "gpu",
        "quantization": "none",
        "execution_provider": "CPUExecutionProvider",
    }


def test_invocations_json_binary_and_v1(container: LiveServer) -> None:
    expected = raw()
    response = httpx.post(
        f"{container.url}/invocations",
        content=infer_body(),
        headers={ATTRIBUTES: "model=heavy;version=1"},
    )
    doc = response.json()
    assert (doc["model_name"], doc["model_version"]) == ("heavy", "1")
    assert doc["outputs"][1]["data"] == expected["next_ids"].tolist()
    # Binary in and out: the header length travels in the custom attributes both ways
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 48},
                },
                {
                    "name": "ids",
                    "shape": [3],
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": 24},
                },
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    binary = httpx.post(
        f"{container.url}/invocations",
        content=header + FEATURES.tobytes() + IDS.tobytes(),
        headers={
            ATTRIBUTES: f"model=heavy;header-length={len(header)}",
            "content-type": "application/octet-stream",
        },
    )
    length = int(binary.headers["inference-header-content-length"])
    assert binary.headers[ATTRIBUTES] == f"header-length={length}"
    outputs = orjson.loads(binary.content[:length])["outputs"]
    assert [o["name"] for o in outputs] == ["scaled", "next_ids", "total"]
    v1 = httpx.post(
        f"{container.url}/invocations",
        json={"instances": [{"features": [1, 2, 3, 4], "ids": 1}]},
        headers={ATTRIBUTES: "model=heavy;protocol=v1"},
    )
    assert v1.json() == {
        "predictions": [{"scaled": [2.0, 4.0, 6.0, 8.0], "next_ids": 2, "total": 10.0}]
    }


@pytest.mark.parametrize(
    ("attributes", "status", "message"),
    [
        (None, 400, "name the model in x-amzn-sagemaker-custom-attributes: model=NAME;version=V"),
        ("model=nope", 404, "model 'nope' is not published"),
        ("model=heavy;protocol=v3", 400, "protocol must be one of v2, v1, got 'v3'"),
        ("model=heavy;header-length=x", 400, "header-length must be an integer, got 'x'"),
    ],
)
def test_invocation_errors(
    container: LiveServer, attributes: str | None, status: int, message: str
) -> None:
    headers = {ATTRIBUTES: attributes} if attributes else {}
    response = httpx.post(f"{container.url}/invocations", content=infer_body(), headers=headers)
    assert (response.status_code, response.json()) == (status, {"error": message})


@dataclass
class Rig:
    api: LiveServer
    runtime_url: str


@pytest.fixture
def realtime(
    store: Path, container: LiveServer, moto_server: MotoServer, tmp_path: Path
) -> Iterator[Rig]:
    """The API with a forwarder to a real-time endpoint (the stand-in runtime, then the container)."""
    with LiveServer(
        app=runtime_app(container.url, boto3.client("s3"), "s3://unused/gpu")
    ) as runtime:
        forwarder = SageMakerForwarder(
            endpoint="maas-gpu",
            mode="realtime",
            async_input=None,
            runtime=boto3.client("sagemaker-runtime", endpoint_url=runtime.url),
        )
        api = api_server(store, tmp_path, forwarder)
        try:
            yield Rig(api, runtime.url)
        finally:
            api.__exit__()


def api_server(store: Path, tmp_path: Path, forwarder: SageMakerForwarder) -> LiveServer:
    settings = Settings(store=str(store), cache_dir=tmp_path / "api-cache")  # type: ignore[call-arg]
    runtime = build_runtime(
        settings, telemetry=Telemetry(stream=io.StringIO()), forwarder=forwarder
    )
    server = LiveServer(app=create_server_app(runtime))
    return server.__enter__()


def test_gpu_models_are_forwarded_and_cpu_models_served_here(realtime: Rig) -> None:
    expected = raw()
    client = triton.InferenceServerClient(url=realtime.api.url.removeprefix("http://"))
    inputs = [
        triton.InferInput("features", [3, 4], "FP32"),
        triton.InferInput("ids", [3], "INT64"),
    ]
    inputs[0].set_data_from_numpy(FEATURES)
    inputs[1].set_data_from_numpy(IDS)
    for model in ("heavy", "light"):  # binary tensors, forwarded (heavy) or local (light)
        result = client.infer(model, inputs)
        for name, want in expected.items():
            assert np.array_equal(result.as_numpy(name), want), (model, name)
    v1 = httpx.post(
        f"{realtime.api.url}/v1/models/heavy:predict",
        json={"instances": [{"features": [1, 2, 3, 4], "ids": 1}]},
    )
    assert v1.json()["predictions"][0]["next_ids"] == 2
    # The API loaded only the CPU model: the GPU model's requests went to the endpoint
    loaded = httpx.post(f"{realtime.api.url}/v2/repository/index", json={"ready": True}).json()
    assert [entry["name"] for entry in loaded] == ["light"]


def test_a_container_input_error_keeps_its_status_and_message(realtime: Rig) -> None:
    bad = {
        "inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
    }
    response = httpx.post(f"{realtime.api.url}/v2/models/heavy/infer", json=bad)
    assert (response.status_code, response.json()) == (400, {"error": "missing input 'ids'"})


def test_an_unreachable_endpoint_is_a_503(
    store: Path, moto_server: MotoServer, tmp_path: Path
) -> None:
    from botocore.config import Config

    dead = boto3.client(
        "sagemaker-runtime",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}),
    )
    api = api_server(
        store,
        tmp_path,
        SageMakerForwarder(endpoint="maas-gpu", mode="realtime", async_input=None, runtime=dead),
    )
    try:
        response = httpx.post(f"{api.url}/v2/models/heavy/infer", content=infer_body())
        assert response.status_code == 503
        assert response.json()["error"].startswith("the GPU endpoint maas-gpu is unreachable")
        assert (
            httpx.post(f"{api.url}/v2/models/light/infer", content=infer_body()).status_code == 200
        )
    finally:
        api.__exit__()


@dataclass
class AsyncRig:
    api: LiveServer
    s3: Any
    bucket: str


@pytest.fixture
def async_rig(
    store: Path, container: LiveServer, moto_server: MotoServer, tmp_path: Path
) -> Iterator[AsyncRig]:
    """The API forwarding to an asynchronous endpoint: the stand-in runtime reads the staged
    request from moto's S3, calls the container, writes the result (or failure) back."""
    s3 = boto3.client("s3")
    bucket = f"maas-gpu-io-{free_port()}"
    s3.create_bucket(Bucket=bucket)
    with LiveServer(app=runtime_app(container.url, s3, f"s3://{bucket}/gpu")) as runtime:
        forwarder = SageMakerForwarder(
            endpoint="maas-gpu",
            mode="async",
            async_input=f"s3://{bucket}/gpu/inputs",
            runtime=boto3.client("sagemaker-runtime", endpoint_url=runtime.url),
            s3=s3,
        )
        api = api_server(store, tmp_path, forwarder)
        try:
            yield AsyncRig(api, s3, bucket)
        finally:
            api.__exit__()


def test_async_forwarding_answers_202_and_the_result_lands_in_s3(async_rig: AsyncRig) -> None:
    api, s3, bucket = async_rig.api, async_rig.s3, async_rig.bucket
    response = httpx.post(f"{api.url}/v2/models/heavy/infer", content=infer_body())
    assert response.status_code == 202
    doc: dict[str, Any] = response.json()
    inference_id = doc["inference_id"]
    assert doc["result"] == f"/v2/models/heavy/async/{inference_id}"
    assert response.headers["location"] == doc["result"]
    assert doc["output_location"] == f"s3://{bucket}/gpu/outputs/{inference_id}.out"
    staged = s3.list_objects_v2(Bucket=bucket, Prefix="gpu/inputs/")["Contents"]
    assert sorted(o["Key"] for o in staged) == [
        f"gpu/inputs/{inference_id}",
        f"gpu/inputs/{inference_id}.ticket.json",
    ]
    key = doc["output_location"].split(f"{bucket}/", 1)[1]
    result = orjson.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert result["outputs"][2]["data"] == raw()["total"].tolist()


def test_the_api_answers_an_async_result_pending_then_done(async_rig: AsyncRig) -> None:
    """The client asks the API, not the bucket: 202 with Retry-After while SageMaker has written
    nothing, then the stored response, equal to the container's own answer."""
    api, s3, bucket = async_rig.api, async_rig.s3, async_rig.bucket
    doc = httpx.post(f"{api.url}/v2/models/heavy/infer", content=infer_body()).json()
    key = doc["output_location"].split(f"{bucket}/", 1)[1]
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)  # as before the endpoint has answered
    pending = httpx.get(f"{api.url}{doc['result']}")
    assert pending.status_code == 202, pending.text
    assert pending.json() == {"inference_id": doc["inference_id"], "status": "pending"}
    assert pending.headers["retry-after"] == "5"
    s3.put_object(Bucket=bucket, Key=key, Body=stored, ContentType="application/json")
    done = httpx.get(f"{api.url}{doc['result']}")
    assert done.status_code == 200, done.text
    outputs = {o["name"]: o["data"] for o in done.json()["outputs"]}
    assert outputs["total"] == raw()["total"].tolist()
    assert done.json()["model_name"] == "heavy"


def test_a_failed_async_inference_answers_its_error(async_rig: AsyncRig) -> None:
    api = async_rig.api
    bad = orjson.dumps({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32"}]})
    doc = httpx.post(f"{api.url}/v2/models/heavy/infer", content=bad).json()
    failed = httpx.get(f"{api.url}{doc['result']}")
    assert failed.status_code == 500, failed.text
    message = failed.json()["error"]
    assert message.startswith("the asynchronous inference failed: ")
    assert "'data'" in message  # the container's own reason, as it gave it


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (
            "/v2/models/heavy/async/00000000-0000-4000-8000-000000000000",
            404,
            "model 'heavy' has no asynchronous inference '00000000-0000-4000-8000-000000000000'",
        ),
        (
            "/v2/models/heavy/async/inputs.ticket.json",
            400,
            "inference id 'inputs.ticket.json' is not one this service gives out (a UUID)",
        ),
        ("/v2/models/heavy/async/..%2F..%2Fsecret", 404, "no such endpoint"),
        ("/v2/models/Bad%20Name/async/x", 400, "model name"),
    ],
)
def test_unknown_and_malformed_inference_ids(
    async_rig: AsyncRig, path: str, status: int, message: str
) -> None:
    response = httpx.get(f"{async_rig.api.url}{path}")
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_an_inference_id_answers_only_for_its_own_model(async_rig: AsyncRig) -> None:
    api = async_rig.api
    doc = httpx.post(f"{api.url}/v2/models/heavy/infer", content=infer_body()).json()
    other = httpx.get(f"{api.url}/v2/models/light/async/{doc['inference_id']}")
    assert other.status_code == 404
    assert other.json() == {
        "error": f"model 'light' has no asynchronous inference '{doc['inference_id']}'"
    }


def test_no_async_results_without_an_async_endpoint(realtime: Rig) -> None:
    response = httpx.get(
        f"{realtime.api.url}/v2/models/heavy/async/00000000-0000-4000-8000-000000000000"
    )
    assert response.status_code == 404
    assert "the GPU endpoint is not asynchronous here" in response.json()["error"]
