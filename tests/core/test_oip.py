"""OIP v2 request/response bodies (JSON and Triton binary) and v1 predict bodies."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from functions.core.codec import encode_binary
from functions.core.errors import InvalidInput
from functions.core.manifest import TensorSpec
from functions.core.oip import (
    encode_infer_response,
    encode_predict_response,
    parse_infer,
    parse_predict,
)


def body(doc: object) -> bytes:
    return orjson.dumps(doc)


def test_json_request() -> None:
    request = parse_infer(
        body(
            {
                "id": "r1",
                "parameters": {"priority": 1},
                "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}],
                "outputs": [{"name": "y"}],
            }
        )
    )
    assert request.id == "r1"
    assert request.parameters == {"priority": 1}
    assert request.outputs == ["y"]
    assert request.inputs[0][0] == "x"
    assert request.inputs[0][1].tolist() == [[1.0, 2.0]]


def test_binary_request_and_response() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = np.array([b"ab", b"c"], dtype=object)
    header = body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 24},
                },
                {
                    "name": "w",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 11},
                },
            ],
            "outputs": [{"name": "x", "parameters": {"binary_data": True}}, {"name": "w"}],
        }
    )
    request = parse_infer(header + encode_binary(x) + encode_binary(words), len(header))
    assert np.array_equal(request.inputs[0][1], x)
    assert request.inputs[1][1].tolist() == [b"ab", b"c"]
    content, length = encode_infer_response(
        model_name="m", model_version="1", outputs={"x": x, "w": words}, request=request
    )
    assert length is not None
    doc = orjson.loads(content[:length])
    assert doc["outputs"][0] == {
        "name": "x",
        "datatype": "FP32",
        "shape": [2, 3],
        "parameters": {"binary_data_size": 24},
    }
    assert doc["outputs"][1] == {
        "name": "w",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["ab", "c"],
    }
    assert np.frombuffer(content[length:], dtype="<f4").reshape(2, 3).tolist() == x.tolist()


def test_binary_data_output_parameter_makes_every_output_binary() -> None:
    request = parse_infer(
        body(
            {
                "parameters": {"binary_data_output": True},
                "inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [3]}],
            }
        )
    )
    content, length = encode_infer_response(
        model_name="m", model_version="2", outputs={"y": np.array([7], np.int64)}, request=request
    )
    assert length is not None and content[length:] == (7).to_bytes(8, "little")


def test_json_response_echoes_id() -> None:
    request = parse_infer(
        body(
            {"id": "abc", "inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [3]}]}
        )
    )
    content, length = encode_infer_response(
        model_name="m",
        model_version="2",
        outputs={"y": np.array([[0.5, 1.5]], np.float32)},
        request=request,
    )
    assert length is None
    assert orjson.loads(content) == {
        "model_name": "m",
        "model_version": "2",
        "id": "abc",
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]}],
    }


X = {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}


@pytest.mark.parametrize(
    ("raw", "length", "message"),
    [
        (b"{not json", None, "request body is not valid JSON: "),
        (b"[]", None, "the request must be a JSON object"),
        (body({"inputs": []}), None, "'inputs' must be a non-empty list of tensors"),
        (
            body({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}),
            None,
            "inputs[0] needs a 'name' string",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}),
            None,
            "input 'x' needs a 'datatype' string",
        ),
        (
            body({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}),
            None,
            "input 'x' needs a 'shape'",
        ),
        (
            body({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}),
            None,
            "input 'x' needs 'data' or a binary_data_size parameter",
        ),
        (body({"id": 5, "inputs": [X]}), None, "'id' must be a string"),
        (body({"inputs": [X], "outputs": "y"}), None, "'outputs' must be a list"),
        (body({"inputs": [X]}), 999, "Inference-Header-Content-Length 999 is outside the body"),
        (
            body({"inputs": [X]}) + b"junk",
            len(body({"inputs": [X]})),
            "4 bytes of binary data follow the last tensor",
        ),
        (
            body(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [1],
                            "datatype": "FP32",
                            "parameters": {"binary_data_size": 4},
                        }
                    ]
                }
            ),
            None,
            "input 'x': binary_data_size 4 runs past the end of the body",
        ),
    ],
)
def test_malformed_requests(raw: bytes, length: int | None, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_infer(raw, length)
    assert str(caught.value).startswith(message)


SINGLE = (TensorSpec("x", "FP32", (-1, 2)),)
MULTI = (TensorSpec("a", "FP32", (-1, 2)), TensorSpec("b", "INT64", (-1,)))


def test_predict_single_input_rows() -> None:
    [(name, array)] = parse_predict(body({"instances": [[1, 2], [3, 4]]}), SINGLE)
    assert name == "x" and array.dtype == np.float32 and array.tolist() == [[1, 2], [3, 4]]


def test_predict_named_inputs() -> None:
    inputs = parse_predict(
        body({"instances": [{"a": [1, 2], "b": 3}, {"a": [3, 4], "b": 5}]}), MULTI
    )
    assert [(n, a.tolist()) for n, a in inputs] == [("a", [[1, 2], [3, 4]]), ("b", [3, 5])]


@pytest.mark.parametrize(
    ("doc", "specs", "message"),
    [
        ({"rows": []}, SINGLE, "'instances' must be a non-empty list"),
        ({"instances": [[1, 2], [3]]}, SINGLE, "input 'x': instances are ragged"),
        (
            {"instances": [[1, 2]]},
            MULTI,
            "this model takes several inputs: each instance must be an object keyed by 'a', 'b'",
        ),
        ({"instances": [{"a": [1, 2]}]}, MULTI, "an instance is missing input 'b'"),
        ({"instances": [{"a": [1, 2], "b": 1, "c": 2}]}, MULTI, "unexpected input 'c'"),
    ],
)
def test_malformed_predict(doc: object, specs: tuple[TensorSpec, ...], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_predict(body(doc), specs)
    assert str(caught.value) == message


def test_predict_response_shapes() -> None:
    one = encode_predict_response({"y": np.array([1, 2], np.int64)})
    assert orjson.loads(one) == {"predictions": [1, 2]}
    two = encode_predict_response(
        {"label": np.array([1, 2]), "p": np.array([[0.5, 0.5], [0.25, 0.75]], np.float32)}
    )
    assert orjson.loads(two) == {
        "predictions": [{"label": 1, "p": [0.5, 0.5]}, {"label": 2, "p": [0.25, 0.75]}]
    }
