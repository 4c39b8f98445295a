"""The Lambda handler on real-shaped API Gateway events, and its equivalence with `maas serve`."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from functions.api.handler import handle
from functions.core.codec import decode_binary
from functions.runtime import Runtime
from model_build.lambda_local import LocalContext, api_event, load_event
from tests.conftest import EVENTS, runtime_for, settings_for

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EVENT_FILES = sorted(p.name for p in EVENTS.glob("apigw-*.json"))
load = load_event


def handler_over(runtime: Runtime) -> Handler:
    """The production handler's body over `runtime` (what `handler` does with the process's)."""
    return lambda event, context: dict(handle(runtime, event, context))  # type: ignore[arg-type]


@pytest.fixture
def handler(served_store: Path, tmp_path: Path) -> Handler:
    """The production handler over a runtime for the test store."""
    settings = settings_for(str(served_store), tmp_path / "cache", max_body_bytes=1 << 20)
    return handler_over(runtime_for(settings))


def test_events_are_real_api_gateway_v2_payloads() -> None:
    assert len(EVENT_FILES) >= 8
    for name in EVENT_FILES:
        event = load(name)
        assert event["version"] == "2.0"
        assert event["routeKey"] == "$default"
        assert event["rawPath"] == event["requestContext"]["http"]["path"]
        assert set(event["requestContext"]) >= {
            "accountId",
            "apiId",
            "domainName",
            "http",
            "requestId",
            "stage",
            "time",
            "timeEpoch",
        }
        assert "iam" in event["requestContext"]["authorizer"]
        assert isinstance(event["isBase64Encoded"], bool)
        if "body" in event:
            raw = (
                base64.b64decode(event["body"])
                if event["isBase64Encoded"]
                else event["body"].encode()
            )
            assert int(event["headers"]["content-length"]) == len(raw)


def test_health_and_metadata(handler: Handler) -> None:
    assert handler(load("apigw-v2-health-live.json"), LocalContext())["body"] == '{"live":true}'
    ready = handler(load("apigw-v2-health-ready.json"), LocalContext())
    assert (ready["statusCode"], ready["body"]) == (200, '{"ready":true}')
    meta = handler(load("apigw-v2-model-metadata.json"), LocalContext())
    assert orjson.loads(meta["body"])["inputs"] == [
        {"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}
    ]
    assert handler(load("apigw-v2-server-metadata.json"), LocalContext())["statusCode"] == 200
    assert (
        orjson.loads(handler(load("apigw-v2-model-ready.json"), LocalContext())["body"])["ready"]
        is True
    )


def test_v2_infer_event(handler: Handler) -> None:
    response = handler(load("apigw-v2-infer.json"), LocalContext())
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["isBase64Encoded"] is False
    doc = orjson.loads(response["body"])
    assert doc["id"] == "req-42"
    assert doc["outputs"][0]["data"] == [0, 1, 2]  # the event carries dataset rows 0, 1, 2


def test_v1_predict_event(handler: Handler) -> None:
    response = handler(load("apigw-v1-predict.json"), LocalContext())
    assert response["statusCode"] == 200
    assert [p["label"] for p in orjson.loads(response["body"])["predictions"]] == [0, 1, 2]


def test_binary_tensors_through_base64_bodies(handler: Handler) -> None:
    response = handler(load("apigw-v2-infer-binary.json"), LocalContext())
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    body = base64.b64decode(response["body"])
    length = int(response["headers"]["inference-header-content-length"])
    doc = orjson.loads(body[:length])
    label, proba = doc["outputs"]
    assert label["parameters"] == {"binary_data_size": 16}
    assert decode_binary("label", "INT64", label["shape"], body[length:]).tolist() == [3, 4]
    assert np.asarray(proba["data"]).shape == (20,)


def test_errors_through_the_handler(handler: Handler) -> None:
    event = load("apigw-v2-infer.json")
    event["body"] = "{broken"
    response = handler(event, LocalContext())
    assert response["statusCode"] == 400
    assert orjson.loads(response["body"])["error"].startswith("request body is not valid JSON")
    event = api_event("/v2/models/unknown", method="GET", template="apigw-v2-model-metadata.json")
    response = handler(event, LocalContext())
    assert (response["statusCode"], orjson.loads(response["body"])) == (
        404,
        {"error": "model 'unknown' is not published"},
    )


@pytest.mark.parametrize("name", EVENT_FILES)
def test_same_response_through_serve_and_the_handler(
    handler: Handler, http: httpx.Client, name: str
) -> None:
    # Given the request an event carries
    event = load(name)
    body = event.get("body")
    content = base64.b64decode(body) if body and event["isBase64Encoded"] else (body or "").encode()
    headers = {
        k: v
        for k, v in event["headers"].items()
        if k in ("content-type", "inference-header-content-length")
    }
    # When it goes through the Lambda handler and over HTTP to `maas serve`
    via_lambda = handler(event, LocalContext())
    via_http = http.request(
        event["requestContext"]["http"]["method"],
        event["rawPath"],
        content=content,
        headers=headers,
    )
    # Then status, content type and body are the same
    lambda_body = (
        base64.b64decode(via_lambda["body"])
        if via_lambda["isBase64Encoded"]
        else via_lambda["body"].encode()
    )
    assert via_lambda["statusCode"] == via_http.status_code == 200
    assert via_lambda["headers"]["content-type"] == via_http.headers["content-type"]
    assert lambda_body == via_http.content


def test_base_path_and_preload(served_store: Path, tmp_path: Path) -> None:
    # Given the heavy-CPU function's settings: routed under /heavy, models preloaded at init
    settings = settings_for(
        str(served_store), tmp_path / "cache", api_base_path="/heavy", preload="digits:prod, nope:1"
    )
    runtime = runtime_for(settings)
    # Then the good model is loaded before any request, and a broken preload does not stop it
    assert runtime.registry.loaded() == [("digits", 1)]
    event = api_event(
        "/heavy/v2/models/digits/versions/prod/ready",
        method="GET",
        template="apigw-v2-model-ready.json",
    )
    response = handler_over(runtime)(event, LocalContext())
    assert response["statusCode"] == 200


def test_an_unexpected_error_is_a_logged_json_500_on_every_path(
    served_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that fails in a way nothing expects (not a store error: a bug, say)
    stream = io.StringIO()
    runtime = runtime_for(settings_for(str(served_store), tmp_path / "cache"), stream)

    def broken(key: str) -> bytes:
        raise RuntimeError(f"boom reading {key}")

    monkeypatch.setattr(runtime.registry.repository.store, "read", broken)
    serve = handler_over(runtime)
    # When inference and a metadata request (FastAPI under Mangum) reach it
    body = load("apigw-v2-infer.json")["body"].encode()
    inference = serve(api_event("/v2/models/digits/versions/1/infer", body), LocalContext())
    metadata = serve(
        api_event(
            "/v2/models/digits/versions/1", method="GET", template="apigw-v2-model-metadata.json"
        ),
        LocalContext(),
    )
    # Then both answer a JSON 500 that reveals nothing, instead of API Gateway's bare 500
    for response in (inference, metadata):
        assert response["statusCode"] == 500
        assert response["headers"]["content-type"] == "application/json"
        assert orjson.loads(response["body"]) == {"error": "internal error"}
    # And each is logged with its traceback, and the request line says 500
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    errors = [line for line in lines if line["message"] == "unexpected error"]
    assert len(errors) == 2
    assert all("boom reading models/digits/1/manifest.json" in e["exception"] for e in errors)
    assert all(e["exception_name"] == "RuntimeError" for e in errors)
    (request,) = [line for line in lines if line["message"] == "request" and "model" in line]
    assert (request["status"], request["level"], request["error"]) == (500, "ERROR", "RuntimeError")
    access = [line for line in lines if line["message"] == "request" and "path" in line]
    assert [a["status"] for a in access] == [500]


def test_an_inference_cold_start_imports_no_fastapi_and_no_pydantic(
    served_store: Path, tmp_path: Path
) -> None:
    """The handler's import and first inference go without FastAPI, Mangum and pydantic: the
    cold start pays for none of them (docs/benchmarks.md, cold start)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = f"""
import sys
from functions.api.handler import handler
from model_build.lambda_local import LocalContext, load_event
answer = handler(load_event({str(EVENTS / "apigw-v2-infer.json")!r}), LocalContext())
print(answer["statusCode"], sorted({{m.split(".")[0] for m in sys.modules}} & {{"fastapi", "starlette", "mangum", "pydantic", "pydantic_core"}}))
"""
    env = {"PATH": "/usr/bin", "MAAS_STORE": str(served_store), "MAAS_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    assert printed == ["200 []"]  # (the lines starting "{" are the log's)
