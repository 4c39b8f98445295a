"""Codec round trips for every OIP datatype, and the exact errors for bad tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functions.core.codec import decode_binary, decode_json, encode_binary, encode_json_data
from functions.core.datatypes import DATATYPES, OIP_TO_NUMPY, oip_datatype
from functions.core.errors import InvalidInput

SAMPLES: dict[str, list[Any]] = {
    "BOOL": [True, False, True, True, False, False],
    "UINT8": [0, 1, 2, 127, 128, 255],
    "UINT16": [0, 1, 2, 300, 40000, 65535],
    "UINT32": [0, 1, 2, 70000, 2**31, 2**32 - 1],
    "UINT64": [0, 1, 2, 2**40, 2**63, 2**64 - 1],
    "INT8": [-128, -1, 0, 1, 100, 127],
    "INT16": [-32768, -1, 0, 1, 1000, 32767],
    "INT32": [-(2**31), -1, 0, 1, 123456, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 1, 2**40, 2**63 - 1],
    "FP16": [-65504.0, -1.5, 0.0, 0.25, 1.0, 65504.0],
    "FP32": [-3.5, -1.0, 0.0, 0.125, 2.0**100, 3.4028234663852886e38],
    "FP64": [-1e300, -1.0, 0.0, 0.1, 1.7976931348623157e308, 5e-324],
    "BYTES": ["a", "", "héllo", "x" * 50, "0", "🙂"],
}


def test_every_datatype_has_samples() -> None:
    assert set(SAMPLES) == set(DATATYPES)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_json_round_trip(datatype: str) -> None:
    # Given a flat JSON tensor of shape [2, 3]
    array = decode_json("x", datatype, [2, 3], SAMPLES[datatype])
    # Then it decodes to the datatype's dtype and shape
    assert array.dtype == OIP_TO_NUMPY[datatype]
    assert array.shape == (2, 3)
    assert oip_datatype(array.dtype) == datatype
    # And encodes back to the same values
    assert encode_json_data(array) == SAMPLES[datatype]


@pytest.mark.parametrize("datatype", DATATYPES)
def test_binary_round_trip(datatype: str) -> None:
    array = decode_json("x", datatype, [3, 2], SAMPLES[datatype])
    raw = encode_binary(array)
    back = decode_binary("x", datatype, [3, 2], raw)
    assert back.dtype == array.dtype
    assert back.shape == (3, 2)
    assert encode_json_data(back) == SAMPLES[datatype]


def test_binary_is_little_endian_row_major() -> None:
    array = decode_json("x", "INT32", [2], [1, 256])
    assert encode_binary(array) == b"\x01\x00\x00\x00\x00\x01\x00\x00"
    bytes_array = decode_json("s", "BYTES", [2], ["ab", ""])
    assert encode_binary(bytes_array) == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


def test_nested_and_flat_data_decode_the_same() -> None:
    flat = decode_json("x", "FP32", [2, 2], [1, 2, 3, 4])
    nested = decode_json("x", "FP32", [2, 2], [[1, 2], [3, 4]])
    assert np.array_equal(flat, nested)
    assert flat.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_scalar_and_empty_tensors() -> None:
    assert decode_json("x", "BOOL", [0], []).dtype == np.bool_
    assert decode_json("x", "INT64", [], 7).tolist() == 7
    empty = decode_json("x", "FP32", [0, 3], [])
    assert empty.shape == (0, 3)
    assert decode_binary("x", "FP32", [0, 3], b"").shape == (0, 3)


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP32", [2, 2], [1, 2, 3], "input 'x': data has 3 elements but shape [2, 2] needs 4"),
        ("FP32", [2], ["a", "b"], "input 'x': FP32 data must be numbers, got strings"),
        ("FP32", [2], [True, False], "input 'x': FP32 data must be numbers, got booleans"),
        (
            "INT64",
            [2],
            [1.5, 2],
            "input 'x': INT64 data must be integers in [-9223372036854775808, 9223372036854775807]",
        ),
        ("INT8", [2], [1, 300], "input 'x': INT8 data must be integers in [-128, 127]"),
        ("UINT8", [1], [-1], "input 'x': UINT8 data must be integers in [0, 255]"),
        ("BOOL", [2], [1, 0], "input 'x': BOOL data must be true or false"),
        ("BYTES", [2], ["a", 3], "input 'x': BYTES data must be strings, got int"),
        ("FP16", [1], [1e6], "input 'x': a value is out of range for FP16"),
        ("FP32", [2, 2], [[1, 2], [3]], "input 'x': data has 3 elements but shape [2, 2] needs 4"),
        (
            "FP32",
            [-1, 2],
            [1, 2],
            "input 'x': shape must be a list of non-negative integers, got [-1, 2]",
        ),
        ("FP32", "2", [1, 2], "input 'x': shape must be a list of non-negative integers, got '2'"),
        ("FP32", [1], {"a": 1}, "input 'x': data must be a list, got dict"),
        (
            "FLOAT",
            [1],
            [1],
            "unknown datatype 'FLOAT'; expected one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES",
        ),
        ("FP32", [2], [1, None], "input 'x': FP32 data must be numbers"),
    ],
)
def test_bad_json_tensors_are_typed_errors(
    datatype: str, shape: Any, data: Any, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_json("x", datatype, shape, data)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "message"),
    [
        (
            "FP32",
            [2],
            b"\x00" * 7,
            "input 'x': binary data has 7 bytes but shape [2] of FP32 needs 8",
        ),
        ("BYTES", [1], b"\x05\x00\x00\x00ab", "input 'x': truncated BYTES element"),
        ("BYTES", [1], b"\x05\x00", "input 'x': truncated BYTES element length"),
        (
            "BYTES",
            [2],
            b"\x01\x00\x00\x00a",
            "input 'x': data has 1 elements but shape [2] needs 2",
        ),
    ],
)
def test_bad_binary_tensors_are_typed_errors(
    datatype: str, shape: list[int], raw: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_binary("x", datatype, shape, raw)
    assert str(caught.value) == message


NUMERIC = [d for d in DATATYPES if d != "BYTES"]


@given(
    st.sampled_from(NUMERIC).flatmap(
        lambda dt: hnp.arrays(
            OIP_TO_NUMPY[dt],
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
            elements={"allow_nan": False} if OIP_TO_NUMPY[dt].kind == "f" else None,
        )
    )
)
def test_any_numeric_array_round_trips(array: np.ndarray) -> None:
    datatype = oip_datatype(array.dtype)
    shape = list(array.shape)
    assert np.array_equal(decode_binary("x", datatype, shape, encode_binary(array)), array)
    back = decode_json("x", datatype, shape, encode_json_data(array))
    assert back.dtype == array.dtype
    assert np.array_equal(back, array)


@given(st.lists(st.text(max_size=8), max_size=6))
def test_any_strings_round_trip(values: list[str]) -> None:
    array = decode_json("s", "BYTES", [len(values)], values)
    assert (
        encode_json_data(decode_binary("s", "BYTES", [len(values)], encode_binary(array))) == values
    )


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=2)
    ),
    max_leaves=12,
)
SHAPES = st.one_of(
    st.lists(st.integers(min_value=-2, max_value=4), max_size=3),
    st.just("2"),
    st.none(),
    st.lists(st.floats(allow_nan=False), max_size=2),
)


@given(st.sampled_from([*DATATYPES, "FLOAT", ""]), SHAPES, JSONISH)
def test_any_json_tensor_decodes_or_is_a_typed_error(datatype: str, shape: Any, data: Any) -> None:
    # Whatever a client sends, the codec returns an array of the declared shape or InvalidInput.
    try:
        array = decode_json("x", datatype, shape, data)
    except InvalidInput:
        return
    assert array.shape == tuple(shape)
    assert array.dtype == OIP_TO_NUMPY[datatype]


@given(
    st.sampled_from(DATATYPES),
    st.lists(st.integers(min_value=0, max_value=4), max_size=3),
    st.binary(max_size=64),
)
def test_any_binary_tensor_decodes_or_is_a_typed_error(
    datatype: str, shape: list[int], raw: bytes
) -> None:
    try:
        array = decode_binary("x", datatype, shape, raw)
    except InvalidInput:
        return
    assert array.shape == tuple(shape)
