"""Limits and time: over-limit requests are refused naming the limit; long runs end in a 504."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest

from functions.api.handler import handle
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.lambda_local import LocalContext, api_event
from tests.conftest import LiveServer, publish, runtime_for, settings_for
from tests.models import multi_io, slow_model

SLOW = {"inputs": [{"name": "x", "shape": [1, 1024], "datatype": "FP32", "data": [1.0] * 1024}]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    repo = Repository(LocalStore(root))
    publish(repo, "multi", multi_io())
    publish(repo, "slow", slow_model())
    return root


def slow_seconds() -> float:
    session = ort.InferenceSession(slow_model())
    start = time.perf_counter()
    session.run(None, {"x": np.ones((1, 1024), np.float32)})
    return time.perf_counter() - start


def features(rows: int) -> dict[str, object]:
    return {
        "inputs": [
            {"name": "features", "shape": [rows, 4], "datatype": "FP32", "data": [0.0] * rows * 4},
            {"name": "ids", "shape": [rows], "datatype": "INT64", "data": [0] * rows},
        ]
    }


def test_tensor_and_batch_limits_name_the_limit(store: Path, tmp_path: Path) -> None:
    settings = settings_for(str(store), tmp_path / "cache", max_tensor_elements=100, max_batch=10)
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.post("/v2/models/multi/infer", json=features(10)).status_code == 200
        too_many = client.post("/v2/models/multi/infer", json=features(26))
        assert (too_many.status_code, too_many.json()) == (
            413,
            {
                "error": "input 'features' has 104 elements, over the limit of 100 (MAAS_MAX_TENSOR_ELEMENTS)"
            },
        )
        batch = client.post("/v2/models/multi/infer", json=features(11))
        assert (batch.status_code, batch.json()) == (
            413,
            {
                "error": "input 'features' has a batch of 11 rows, over the limit of 10 (MAAS_MAX_BATCH)"
            },
        )
        instances = client.post(
            "/v1/models/multi:predict",
            json={"instances": [{"features": [1, 2, 3, 4], "ids": 1}] * 11},
        )
        assert (instances.status_code, instances.json()) == (
            413,
            {"error": "11 instances, over the limit of 10 (MAAS_MAX_BATCH)"},
        )
        # the shape alone is refused: no data is decoded (a huge declared shape, no data)
        huge = {
            "inputs": [{"name": "features", "shape": [10**9, 4], "datatype": "FP32", "data": []}]
        }
        assert client.post("/v2/models/multi/infer", json=huge).status_code == 413


def test_a_run_past_its_budget_is_stopped_with_a_504(store: Path, tmp_path: Path) -> None:
    assert slow_seconds() > 0.3  # the model is slow enough for the budget to matter
    settings = settings_for(str(store), tmp_path / "cache", max_inference_seconds=0.1)
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        start = time.perf_counter()
        response = client.post("/v2/models/slow/infer", json=SLOW)
        elapsed = time.perf_counter() - start
        assert response.status_code == 504
        assert response.json()["error"] == (
            "model 'slow' did not finish within its time budget of 0.10 s (MAAS_MAX_INFERENCE_SECONDS, "
            "or the Lambda's remaining time); the run was stopped"
        )
        assert elapsed < slow_seconds()  # stopped, not waited out
        # and the server keeps serving
        assert client.post("/v2/models/multi/infer", json=features(1)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/slow/infer",  # the handler's own path to serve_inference
        "/v2/models/sl%6Fw/infer",  # an escaped name: FastAPI's route under Mangum decodes it
    ],
)
def test_the_lambdas_remaining_time_bounds_a_run(store: Path, tmp_path: Path, path: str) -> None:
    runtime = runtime_for(settings_for(str(store), tmp_path / "cache"))
    event = api_event(path, orjson.dumps(SLOW))
    response = handle(runtime, event, LocalContext(timeout_seconds=0.6))  # type: ignore[arg-type]
    # Then the run had what was left of the invocation (at most 0.1 s), not the setting's 25 s
    assert response["statusCode"] == 504
    message = orjson.loads(response["body"])["error"]
    assert message.startswith("model 'slow' did not finish within its time budget of 0.")


def test_serve_bounds_requests_in_flight(store: Path, tmp_path: Path) -> None:
    settings = settings_for(str(store), tmp_path / "cache", serve_concurrency=1)
    with LiveServer(runtime_for(settings)) as server:
        first: dict[str, int] = {}

        def slow_request() -> None:
            first["status"] = httpx.post(
                f"{server.url}/v2/models/slow/infer", json=SLOW, timeout=60
            ).status_code

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.15)  # the slow request is in flight
        refused = httpx.post(f"{server.url}/v2/models/multi/infer", json=features(1), timeout=60)
        thread.join()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "error": "the server has 1 requests in flight, its limit (MAAS_SERVE_CONCURRENCY=1); retry shortly"
        }
        assert first["status"] == 200
        assert (
            httpx.post(f"{server.url}/v2/models/multi/infer", json=features(1)).status_code == 200
        )
