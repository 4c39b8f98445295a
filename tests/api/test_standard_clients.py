"""A standard OIP v2 client (tritonclient's HTTP client) gets metadata and raw-onnxruntime results."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton

from model_build.examples.digits import TrainedModel
from tests import models
from tests.conftest import LiveServer


@pytest.fixture
def client(live: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{live.port}")


def test_server_and_model_health(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits", "prod")
    assert not client.is_model_ready("unknown")
    assert client.get_server_metadata()["extensions"] == ["model_repository", "binary_tensor_data"]


def test_model_metadata(client: triton.InferenceServerClient) -> None:
    meta = client.get_model_metadata("multi", "1")
    assert meta["inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "ids", "datatype": "INT64", "shape": [-1]},
    ]
    assert [o["name"] for o in meta["outputs"]] == ["scaled", "next_ids", "total"]
    index = client.get_model_repository_index()
    assert {"digits", "multi"} <= {entry["name"] for entry in index}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_float_and_int64_inputs_several_outputs(
    client: triton.InferenceServerClient, binary: bool
) -> None:
    features = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    ids = np.arange(5, dtype=np.int64) * 1_000_000_007
    expected = ort.InferenceSession(models.multi_io()).run(None, {"features": features, "ids": ids})
    inputs = [triton.InferInput("features", [5, 4], "FP32"), triton.InferInput("ids", [5], "INT64")]
    inputs[0].set_data_from_numpy(features, binary_data=binary)
    inputs[1].set_data_from_numpy(ids, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("scaled", "next_ids", "total")
    ]
    result = client.infer("multi", inputs, outputs=outputs, request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    for name, want in zip(("scaled", "next_ids", "total"), expected, strict=True):
        got = result.as_numpy(name)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)


def test_default_client_call_uses_binary_outputs(
    client: triton.InferenceServerClient, digits: TrainedModel
) -> None:
    x = digits.x_test[:16]
    raw_label, raw_proba = ort.InferenceSession(digits.onnx_bytes).run(None, {"pixels": x})
    pixels = triton.InferInput("pixels", list(x.shape), "FP32")
    pixels.set_data_from_numpy(x)
    result = client.infer("digits", [pixels], model_version="prod")
    assert np.array_equal(result.as_numpy("label"), raw_label)
    assert np.array_equal(result.as_numpy("probabilities"), raw_proba)


def test_strings_in_and_out(client: triton.InferenceServerClient) -> None:
    words = np.array([["a", "héllo", ""], ["x", "y", "z"]], dtype=object)
    tensor = triton.InferInput("x_bytes", [2, 3], "BYTES")
    tensor.set_data_from_numpy(words)
    inputs = [tensor]
    for datatype in (
        "bool",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "int8",
        "int16",
        "int32",
        "int64",
        "fp16",
        "fp32",
        "fp64",
    ):
        dtype = triton.triton_to_np_dtype(datatype.upper())
        other = triton.InferInput(f"x_{datatype}", [2, 3], datatype.upper())
        other.set_data_from_numpy(np.ones((2, 3), dtype=dtype))
        inputs.append(other)
    result = client.infer("types", inputs, outputs=[triton.InferRequestedOutput("y_bytes")])
    assert result.as_numpy("y_bytes").tolist() == [
        [w.encode() for w in row] for row in words.tolist()
    ]


def test_errors_reach_the_client(client: triton.InferenceServerClient) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = triton.InferInput("features", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(
        InferenceServerException,
        match=r"\[400\] input 'features' has shape \[1, 3\], expected \[-1, 4\]",
    ):
        client.infer("multi", [tensor])
