"""The API over real HTTP: every endpoint, results equal to raw onnxruntime, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest

from functions.core.codec import decode_binary, decode_json, encode_binary, encode_json_data
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.examples.digits import TrainedModel
from tests.conftest import LiveServer, publish, runtime_for, settings_for
from tests.core.test_codec import SAMPLES


def test_server_metadata_and_health(http: httpx.Client) -> None:
    assert http.get("/v2").json() == {
        "name": "serverless-maas",
        "version": "0.1.0",
        "extensions": ["model_repository", "binary_tensor_data"],
    }
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize(
    "path", ["/v2/models/digits", "/v2/models/digits/versions/1", "/v2/models/digits/versions/prod"]
)
def test_model_metadata_by_latest_version_or_alias(http: httpx.Client, path: str) -> None:
    doc = http.get(path).json()
    parameters = doc.pop("parameters")
    assert parameters["target"] == "cpu" and parameters["quantization"] == "none"
    assert doc == {
        "name": "digits",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        ],
    }


def test_metadata_reports_the_execution_provider_once_loaded(http: httpx.Client) -> None:
    http.get("/v2/models/digits/ready")
    parameters = http.get("/v2/models/digits").json()["parameters"]
    assert parameters == {
        "target": "cpu",
        "quantization": "none",
        "execution_provider": "CPUExecutionProvider",
    }


def test_model_ready(http: httpx.Client) -> None:
    assert http.get("/v2/models/digits/versions/prod/ready").json() == {
        "name": "digits",
        "version": "1",
        "ready": True,
        "execution_provider": "CPUExecutionProvider",
    }
    assert http.get("/v2/models/multi/ready").status_code == 200


def test_infer_equals_raw_onnxruntime(http: httpx.Client, digits: TrainedModel) -> None:
    x = digits.x_test[:32]
    raw_label, raw_proba = ort.InferenceSession(digits.onnx_bytes).run(None, {"pixels": x})
    response = http.post(
        "/v2/models/digits/versions/prod/infer",
        json={
            "id": "batch-7",
            "parameters": {"trace": True},
            "inputs": [
                {"name": "pixels", "shape": [32, 64], "datatype": "FP32", "data": x.tolist()}
            ],
        },
    )
    assert response.status_code == 200
    doc = response.json()
    assert doc["id"] == "batch-7"
    assert (doc["model_name"], doc["model_version"]) == ("digits", "1")
    label, proba = doc["outputs"]
    assert label == {
        "name": "label",
        "datatype": "INT64",
        "shape": [32],
        "data": raw_label.tolist(),
    }
    assert proba["shape"] == [32, 10]
    assert np.array_equal(np.asarray(proba["data"], np.float32).reshape(32, 10), raw_proba)


def test_output_selection_over_http(http: httpx.Client) -> None:
    doc = http.post(
        "/v2/models/multi/infer",
        json={
            "inputs": [
                {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                {"name": "ids", "shape": [1], "datatype": "INT64", "data": [41]},
            ],
            "outputs": [{"name": "next_ids"}],
        },
    ).json()
    assert doc["outputs"] == [{"name": "next_ids", "datatype": "INT64", "shape": [1], "data": [42]}]


def _types_request(binary: bool) -> tuple[bytes, dict[str, str]]:
    inputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for datatype, values in SAMPLES.items():
        tensor: dict[str, Any] = {
            "name": f"x_{datatype.lower()}",
            "shape": [2, 3],
            "datatype": datatype,
        }
        if binary:
            blob = encode_binary(decode_json("x", datatype, [2, 3], values))
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = values
        inputs.append(tensor)
    header = orjson.dumps({"inputs": inputs})
    if not binary:
        return header, {"content-type": "application/json"}
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
    return header + b"".join(blobs), headers


def test_every_datatype_round_trips_through_a_model_as_json(http: httpx.Client) -> None:
    body, headers = _types_request(binary=False)
    doc = http.post("/v2/models/types/infer", content=body, headers=headers).json()
    got = {o["name"]: o for o in doc["outputs"]}
    for datatype, values in SAMPLES.items():
        output = got[f"y_{datatype.lower()}"]
        assert (output["datatype"], output["shape"]) == (datatype, [2, 3])
        # equal at the datatype's precision (orjson writes FP32 in its shortest float32 form)
        sent = decode_json("x", datatype, [2, 3], values)
        assert np.array_equal(decode_json("y", datatype, [2, 3], output["data"]), sent)


def test_every_datatype_round_trips_through_a_model_in_binary(http: httpx.Client) -> None:
    body, headers = _types_request(binary=True)
    request = orjson.loads(body[: int(headers["inference-header-content-length"])])
    request["parameters"] = {"binary_data_output": True}
    header = orjson.dumps(request)
    payload = header + body[int(headers["inference-header-content-length"]) :]
    response = http.post(
        "/v2/models/types/infer",
        content=payload,
        headers={"inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    doc = orjson.loads(response.content[:length])
    offset = length
    for output in doc["outputs"]:
        size = output["parameters"]["binary_data_size"]
        array = decode_binary(
            output["name"],
            output["datatype"],
            output["shape"],
            response.content[offset : offset + size],
        )
        offset += size
        datatype = output["datatype"]
        assert encode_json_data(array) == SAMPLES[datatype]
    assert offset == len(response.content)


def test_repository_index(http: httpx.Client) -> None:
    http.get("/v2/models/digits/ready")
    entries = http.post("/v2/repository/index").json()
    assert {(e["name"], e["version"]) for e in entries} == {
        ("digits", "1"),
        ("multi", "1"),
        ("types", "1"),
        ("fixed", "1"),
        ("transformer", "1"),
    }
    ready = http.post("/v2/repository/index", json={"ready": True}).json()
    assert {"name": "digits", "version": "1", "state": "READY", "reason": ""} in ready
    assert all(e["state"] == "READY" for e in ready)


def test_v1_predict(http: httpx.Client, digits: TrainedModel) -> None:
    x = digits.x_test[:3]
    raw_label, raw_proba = ort.InferenceSession(digits.onnx_bytes).run(None, {"pixels": x})
    doc = http.post(
        "/v1/models/digits/versions/prod:predict", json={"instances": x.tolist()}
    ).json()
    assert [row["label"] for row in doc["predictions"]] == raw_label.tolist()
    assert np.array_equal(
        np.asarray([row["probabilities"] for row in doc["predictions"]], np.float32), raw_proba
    )
    named = http.post(
        "/v1/models/multi:predict", json={"instances": [{"features": [1, 2, 3, 4], "ids": 7}]}
    ).json()
    assert named == {
        "predictions": [{"scaled": [2.0, 4.0, 6.0, 8.0], "next_ids": 8, "total": 10.0}]
    }


def test_docs_and_openapi(http: httpx.Client) -> None:
    assert "swagger" in http.get("/docs").text.lower()
    spec = http.get("/openapi.json").json()
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferenceRequest"
    }
    assert "InferenceRequest" in spec["components"]["schemas"]
    assert "/v1/models/{name}:predict" in spec["paths"]


PIXELS = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}
FEATURES = {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
IDS = {"name": "ids", "shape": [1], "datatype": "INT64", "data": [1]}


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/digits/infer", b"{not json", 400, "request body is not valid JSON: "),
        ("/v2/models/nope/infer", {"inputs": [PIXELS]}, 404, "model 'nope' is not published"),
        (
            "/v2/models/digits/versions/9/infer",
            {"inputs": [PIXELS]},
            404,
            "model 'digits' has no version 9",
        ),
        (
            "/v2/models/digits/versions/canary/infer",
            {"inputs": [PIXELS]},
            404,
            "model 'digits' has no version or alias 'canary'",
        ),
        ("/v2/models/multi/infer", {"inputs": [FEATURES]}, 400, "missing input 'ids'"),
        (
            "/v2/models/multi/infer",
            {"inputs": [FEATURES, IDS, {**IDS, "name": "extra"}]},
            400,
            "unexpected input 'extra'; model 'multi' takes 'features', 'ids'",
        ),
        (
            "/v2/models/multi/infer",
            {"inputs": [FEATURES, IDS, IDS]},
            400,
            "input 'ids' is given more than once",
        ),
        (
            "/v2/models/multi/infer",
            {"inputs": [{**FEATURES, "datatype": "FP64"}, IDS]},
            400,
            "input 'features' has datatype FP64, expected FP32",
        ),
        (
            "/v2/models/multi/infer",
            {"inputs": [{**FEATURES, "shape": [4]}, IDS]},
            400,
            "input 'features' has shape [4] (rank 1), expected rank 2 [-1, 4]",
        ),
        (
            "/v2/models/fixed/infer",
            {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": [0] * 9}]},
            400,
            "input 'x' has shape [3, 3], expected [2, 3] (dimension 0 must be 2)",
        ),
        (
            "/v2/models/multi/infer",
            {"inputs": [{**FEATURES, "shape": [2, 4]}, IDS]},
            400,
            "input 'features': data has 4 elements but shape [2, 4] needs 8",
        ),
        (
            "/v2/models/multi/infer",
            {"inputs": [{**FEATURES, "data": ["a", "b", "c", "d"]}, IDS]},
            400,
            "input 'features': FP32 data must be numbers, got strings",
        ),
        (
            "/v2/models/..%2Fx/infer",
            {"inputs": [PIXELS]},
            400,
            "invalid model name '../x': it must match",
        ),
        ("/v2/models//infer", {"inputs": [PIXELS]}, 400, "invalid model name '': it must match"),
        (
            f"/v2/models/{'x' * 300}/infer",
            {"inputs": [PIXELS]},
            400,
            "invalid model name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...': it must match",
        ),
        (
            "/v2/models/digits/versions/0/infer",
            {"inputs": [PIXELS]},
            400,
            "invalid version '0': versions are positive integers",
        ),
        (
            "/v1/models/digits:predict",
            {"instances": "nope"},
            400,
            "'instances' must be a non-empty list",
        ),
        ("/v1/models/..%2Fx:predict", {"instances": [[1]]}, 400, "invalid model name '../x'"),
        (
            "/v2/models/digits/infer",
            b"x" * (1 << 20 + 1),
            413,
            "request body is larger than the limit of 1048576 bytes (MAAS_MAX_BODY_BYTES)",
        ),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(
    http: httpx.Client, path: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith(message)
    # and the server keeps serving
    assert http.get("/v2/health/live").status_code == 200


def test_unknown_routes_and_methods_are_json_errors(http: httpx.Client) -> None:
    assert http.get("/nope").json() == {"error": "Not Found"}
    response = http.get("/v2/models/digits/infer")
    assert response.status_code == 404
    assert response.json() == {"error": "no such endpoint: GET /v2/models/digits/infer"}


def test_oversized_body_without_content_length_is_refused(http: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 65536

    response = http.post("/v2/models/digits/infer", content=chunks())
    assert response.status_code == 413


def test_openapi_documents_400_not_422(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_integrity_failure_is_a_503_for_that_model_only(
    tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    # Given two published models, one of whose artifact was altered in the store
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "good", artifacts["multi"])
    publish(repo, "tampered", artifacts["digits"])
    path = tmp_path / "store" / "models" / "tampered" / "1" / "model.onnx"
    path.write_bytes(path.read_bytes().replace(b"skl2onnx", b"SKL2ONNX"))
    settings = settings_for(str(tmp_path / "store"), tmp_path / "cache")
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        # Then the tampered model is refused with the reason
        response = client.get("/v2/models/tampered/ready")
        assert response.status_code == 503
        message = response.json()["error"]
        assert message.startswith(
            "model 'tampered' version 1: model.onnx does not match the manifest (blake3 "
        )
        assert message.endswith(
            "where it records "
            + (repo.manifest("tampered", 1).graph_blake3 or "")[:12]
            + "...); refusing to serve it"
        )
        infer = client.post("/v2/models/tampered/infer", json={"inputs": [PIXELS]})
        assert infer.status_code == 503
        # And the other model keeps serving
        ok = client.post("/v2/models/good/infer", json={"inputs": [FEATURES, IDS]})
        assert ok.status_code == 200
