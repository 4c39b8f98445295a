"""JSON bodies decode through simdjson exactly as they did through orjson and Python lists.

The reference is the orjson path itself (`_parse_infer_orjson`, `_parse_predict_orjson`): every
generated body, valid or not, must give the same arrays (dtype, shape, bytes) or the same error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest
import simdjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.core import codec, jsondoc, oip
from functions.core.datatypes import DATATYPES, OIP_TO_NUMPY
from functions.core.manifest import TensorSpec
from functions.core.oip import Limits, parse_infer, parse_predict

# --- JSON text, written the ways clients write it ------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A token written verbatim: numbers as a client may spell them (`-0`, `1E5`, 30 digits)."""

    text: str


@dataclass(frozen=True)
class Obj:
    """An object whose keys may repeat."""

    pairs: tuple[tuple[str, Any], ...]


def text(node: Any, ws: str = "", escape: bool = False) -> str:
    """Serialize a node tree; `escape` writes every non-ASCII character as \\u escapes."""
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, int) and not isinstance(node, bool):
        return str(node)  # orjson would refuse past 64 bits
    if isinstance(node, Obj):
        inner = f",{ws}".join(
            f"{text(k, ws, escape)}{ws}:{ws}{text(v, ws, escape)}" for k, v in node.pairs
        )
        return "{" + ws + inner + ws + "}"
    if isinstance(node, list):
        return "[" + ws + f",{ws}".join(text(v, ws, escape) for v in node) + ws + "]"
    if isinstance(node, str) and escape:
        inner = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else _escape(c) for c in node)
        return f'"{inner}"'
    return orjson.dumps(node).decode()


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


SPECIAL_INTS = [
    0,
    1,
    255,
    256,
    -129,
    65504,
    65519,
    65520,
    65536,
    2**31,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    2**60 + 2**36 + 1,  # rounds differently to FP32 directly and through a double
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    10**30,
]
SPECIAL_FLOATS = [
    "-0",
    "-0.0",
    "0e0",
    "1E5",
    "2.5e+3",
    "1e-400",
    "5e-324",
    "65504.0",
    "65519.99",
    "65520.0",
    "3.4028235e38",
    "3.5e38",
    "1e400",
    "9007199254740993.0",
    "0.1000000000000000055511151231257827021181583404541015625",
]
NUMBERS = st.one_of(
    st.integers(-300, 300).map(lambda i: Raw(str(i))),
    st.sampled_from(SPECIAL_INTS).map(lambda i: Raw(str(i))),
    st.integers(-(2**70), 2**70).map(lambda i: Raw(str(i))),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Raw(repr(f))),
    st.floats(width=16, allow_nan=False, allow_infinity=False).map(lambda f: Raw(repr(f))),
    st.sampled_from(SPECIAL_FLOATS).map(Raw),
    st.from_regex(
        r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,2})?", fullmatch=True
    ).map(Raw),
)
OTHER_LEAVES = st.one_of(
    st.booleans(),
    st.none(),
    st.text(alphabet="ab[]{}é\U0001f642 ", max_size=3),
    st.builds(lambda k: Obj(((k, 1),)), st.sampled_from(["k", "["])),
)


def rarely(draw: st.DrawFn) -> bool:
    """True about one time in twenty (13: away from the bounds Hypothesis favours)."""
    return draw(st.integers(0, 19)) == 13


def values_for(datatype: str) -> st.SearchStrategy[Any]:
    """What a client sends for `datatype`: values of its kind, within its range."""
    dtype = OIP_TO_NUMPY.get(datatype, np.dtype(object))
    if dtype.kind == "O":
        return st.text(max_size=3)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(int(info.min), int(info.max)).map(lambda i: Raw(str(i)))
    floats = st.floats(width=dtype.itemsize * 8, allow_nan=False, allow_infinity=False)
    edges = st.sampled_from(SPECIAL_FLOATS + [str(i) for i in SPECIAL_INTS]).map(Raw)
    return (
        floats.map(lambda f: Raw(repr(f)))
        | st.integers(-999, 999).map(lambda i: Raw(str(i)))
        | edges  # range limits and integers that round differently
    )


INTEGERS = st.one_of(
    st.integers(-300, 300), st.sampled_from(SPECIAL_INTS), st.integers(-(2**64), 2**64)
).map(lambda i: Raw(str(i)))


@st.composite
def leaves(draw: st.DrawFn, datatype: str) -> st.SearchStrategy[Any]:
    """The values of one tensor: its datatype's own, or integers only, or any number; rarely any."""
    choice = draw(st.integers(0, 9))
    if choice < 5:
        return values_for(datatype)
    if choice < 7:
        return INTEGERS
    return NUMBERS if choice < 9 else NUMBERS | OTHER_LEAVES


@st.composite
def arranged(draw: st.DrawFn, flat: list[Any]) -> tuple[Any, list[int]]:
    """`flat` as a client might nest it, with the shape its nesting implies."""
    if rarely(draw):
        how = draw(st.sampled_from(["scalar", "deep"]))
    else:
        how = draw(st.sampled_from(["flat", "nested", "nested", "ragged"]))
    if how == "flat":
        return flat, [len(flat)]
    if how == "scalar":
        return (flat[0] if flat else draw(OTHER_LEAVES)), []
    if how == "deep":  # past numpy's 64 dimensions
        data: Any = flat
        for _ in range(draw(st.integers(60, 70))):
            data = [data]
        return data, [len(flat)]
    if how == "ragged":
        chunks: list[Any] = []
        rest = list(flat)
        while rest or (len(chunks) < 5 and draw(st.booleans())):
            size = draw(st.integers(0, 3))
            chunk: Any = rest[:size]
            rest = rest[size:]
            if draw(st.booleans()):
                chunk = [chunk]
            chunks.append(chunk if draw(st.integers(0, 3)) else (chunk[0] if chunk else []))
        return chunks, [len(flat)]
    shape = [len(flat)]
    while shape[-1] > 1 and draw(st.booleans()):
        divisors = [d for d in range(2, shape[-1] + 1) if shape[-1] % d == 0]
        d = draw(st.sampled_from(divisors))
        shape[-1:] = [shape[-1] // d, d]
    return _nest(flat, shape), shape


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def shape_for(draw: st.DrawFn, implied: list[int]) -> Any:
    """Mostly the implied shape; rarely a wrong count, or not a shape at all."""
    if not rarely(draw):
        return implied
    if draw(st.booleans()):
        return draw(st.lists(st.integers(0, 5), max_size=3))
    return draw(st.sampled_from([[-1], "2", None, [2.0], [True], {"a": 1}, [2**64]]))


DATATYPE = st.sampled_from([*DATATYPES, "FP32", "FP32", "FP32", "INT64", "FLOAT"])
WS = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


def _keyed(draw: st.DrawFn, pairs: list[tuple[str, Any]]) -> Obj:
    """Pairs in any order; rarely one repeated with another value, or one extra."""
    pairs = draw(st.permutations(pairs))
    if pairs and rarely(draw):
        key, _ = draw(st.sampled_from(pairs))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(OTHER_LEAVES)))
    if rarely(draw):
        pairs.append(("extra", [Raw("1"), {"k": [2]}] if draw(st.booleans()) else "x"))
    return Obj(tuple(pairs))


@st.composite
def json_tensors(draw: st.DrawFn, name: str) -> Obj:
    datatype = draw(DATATYPE)
    flat = draw(st.lists(draw(leaves(datatype)), min_size=0 if rarely(draw) else 1, max_size=12))
    data, implied = draw(arranged(flat))
    pairs: list[tuple[str, Any]] = [("datatype", datatype)]
    if not rarely(draw):
        pairs.append(("name", draw(st.sampled_from(["", 1])) if rarely(draw) else name))
    if not rarely(draw):
        pairs.append(("shape", shape_for(draw, implied)))
    if not rarely(draw):
        pairs.append(("data", data))
    if rarely(draw):
        pairs.append(("parameters", Obj((("content_type", "np"),))))
    return _keyed(draw, pairs)


@st.composite
def binary_tensors(draw: st.DrawFn, name: str) -> tuple[Obj, bytes]:
    datatype = draw(st.sampled_from(DATATYPES))
    count = draw(st.integers(0, 4))
    size = count * (4 if datatype == "BYTES" else OIP_TO_NUMPY[datatype].itemsize)
    blob = draw(st.binary(min_size=size, max_size=size))
    if datatype == "BYTES":
        blob = b"".join([len(b"ab").to_bytes(4, "little") + b"ab"] * count)
    declared = len(blob) + (draw(st.sampled_from([1, -1])) if rarely(draw) else 0)
    pairs = [
        ("name", name),
        ("datatype", datatype),
        ("shape", [count]),
        ("parameters", Obj((("binary_data_size", Raw(str(declared))),))),
    ]
    return _keyed(draw, pairs), blob


@st.composite
def infer_bodies(draw: st.DrawFn) -> tuple[bytes, int | None, Limits]:
    """v2 requests: JSON and binary tensors, mostly valid, every part now and then wrong."""
    tensors: list[Any] = []
    blobs: list[bytes] = []
    for index in range(0 if rarely(draw) else draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)) == 2:
            tensor, blob = draw(binary_tensors(f"in{index}"))
            tensors.append(tensor)
            blobs.append(blob)
        else:
            tensors.append(draw(json_tensors(f"in{index}")))
    pairs: list[tuple[str, Any]] = [("inputs", tensors)]
    if draw(st.booleans()):
        pairs.append(("id", 7 if rarely(draw) else draw(st.text(max_size=4))))
    if draw(st.booleans()):
        outputs = [Obj((("name", "y"), ("parameters", Obj((("binary_data", True),)))))]
        pairs.append(
            ("outputs", draw(st.sampled_from(["y", [Obj(())]])) if rarely(draw) else outputs)
        )
    if draw(st.booleans()):
        params = Obj((("binary_data_output", draw(st.booleans())), ("t", draw(NUMBERS))))
        pairs.append(("parameters", params))
    doc: Any = _keyed(draw, pairs)
    if rarely(draw):
        doc = draw(st.sampled_from([tensors, Raw("1"), "s"]))
    header = _mutated(draw, text(doc, draw(WS), escape=draw(st.booleans())).encode())
    length = len(header) if blobs or rarely(draw) else None
    if length is not None and rarely(draw):
        length = draw(
            st.sampled_from([-1, length - 1, length + 1, length + sum(map(len, blobs)) + 1])
        )
    body = header + b"".join(blobs) if length is not None else header
    return body, length, draw(limits())


def _mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """Rarely, a mutation of `raw`."""
    return _mutation(draw, raw) if rarely(draw) else raw


def _mutation(draw: st.DrawFn, raw: bytes) -> bytes:
    """A byte order mark, or one byte inserted, dropped or replaced."""
    how = draw(st.sampled_from(["bom", "insert", "drop", "replace"]))
    if how == "bom" or not raw:
        return b"\xef\xbb\xbf" + raw
    at = draw(st.integers(0, len(raw) - 1))
    byte = bytes([draw(st.sampled_from(b'[]{}",:-.0e1 \\\x00\xff\xc3') | st.integers(0, 255))])
    after = raw[at + 1 :] if how != "insert" else raw[at:]
    return raw[:at] + (b"" if how == "drop" else byte) + after


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    if draw(st.integers(0, 3)) != 2:
        return oip.NO_LIMITS
    return Limits(max_elements=draw(st.integers(0, 12)), max_batch=draw(st.integers(0, 4)))


# --- Outcomes, compared exactly --------------------------------------------------------------


def typed(value: Any) -> Any:
    """A value with every type spelled out: True is not 1, -0.0 is not 0.0."""
    if isinstance(value, dict):
        return ("dict", tuple((k, typed(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(typed(v) for v in value))
    if isinstance(value, np.ndarray):
        content = (
            tuple(typed(v) for v in value.reshape(-1))
            if value.dtype.kind == "O"
            else value.tobytes()
        )
        flags = (value.flags.c_contiguous, value.flags.writeable)
        return ("array", value.dtype.str, value.shape, flags, content)
    if isinstance(value, frozenset):
        return ("set", tuple(sorted(value)))
    return (type(value).__name__, repr(value))


def outcome(call: Any) -> Any:
    try:
        result = call()
    except Exception as exc:  # the error itself is the outcome compared
        return ("raised", type(exc).__name__, str(exc))
    if isinstance(result, oip.InferRequest):
        result = result._asdict()
    return ("returned", typed(result))


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(infer_bodies())
def test_infer_bodies_decode_as_the_orjson_path_does(
    case: tuple[bytes, int | None, Limits],
) -> None:
    body, length, bounds = case
    expected = outcome(lambda: oip._parse_infer_orjson(body, length, bounds))
    assert outcome(lambda: parse_infer(body, length, bounds)) == expected


@st.composite
def predict_cases(draw: st.DrawFn) -> tuple[bytes, tuple[TensorSpec, ...], Limits]:
    """v1 bodies: rows of one input, nested or ragged, or rows keyed by input name."""
    many = rarely(draw)
    specs = (
        (TensorSpec("a", draw(DATATYPE), (-1,)), TensorSpec("b", "INT64", (-1,)))
        if many
        else (TensorSpec("x", draw(DATATYPE), (-1,)),)
    )
    rows: Any
    if many or draw(st.integers(0, 4)) == 2:  # rows keyed by input name
        rows = [
            Obj(tuple((s.name, draw(NUMBERS | st.lists(NUMBERS, max_size=2))) for s in specs))
            for _ in range(draw(st.integers(0, 3)))
        ]
    else:
        flat = draw(
            st.lists(
                draw(leaves(specs[0].datatype)), min_size=0 if rarely(draw) else 1, max_size=12
            )
        )
        rows, _ = draw(arranged(flat))
    doc = _keyed(draw, [("instances", rows)])
    body = _mutated(draw, text(doc, draw(WS), escape=draw(st.booleans())).encode())
    return body, specs, draw(limits())


@PROPERTY
@given(predict_cases())
def test_predict_bodies_decode_as_the_orjson_path_does(
    case: tuple[bytes, tuple[TensorSpec, ...], Limits],
) -> None:
    body, specs, bounds = case
    expected = outcome(lambda: oip._parse_predict_orjson(body, specs, bounds))
    assert outcome(lambda: parse_predict(body, specs, bounds)) == expected


# --- The lazy document agrees with orjson wherever simdjson accepts a body --------------------


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["a", "b", "é", "\x00"])
    objects = st.lists(st.tuples(keys, children), max_size=3).map(lambda p: Obj(tuple(p)))
    return st.lists(children, max_size=4) | objects


ANY_JSON = st.recursive(NUMBERS | OTHER_LEAVES | st.text(max_size=4), _containers, max_leaves=16)


@settings(max_examples=400, deadline=None)
@given(ANY_JSON, WS, st.booleans(), st.data())
def test_simdjson_values_are_orjson_values(node: Any, ws: str, escape: bool, data: Any) -> None:
    # Whatever simdjson accepts, orjson accepts too, with the same values; the rest it leaves.
    raw = text(node, ws, escape).encode()
    wrapped = b'{"v":' + raw + b"}"
    for doc in (raw, wrapped, _mutation(data.draw, raw), _mutation(data.draw, wrapped)):
        root = jsondoc.parse_object(doc)
        if root is not None:
            assert typed(jsondoc.plain(root)) == typed(orjson.loads(doc)), doc


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbf{}",  # simdjson skips a byte order mark that orjson refuses
        b'{"a": 18446744073709551616}',  # past 64 bits: orjson gives a float
        b'{"a": -9223372036854775809}',
        b'{"a": 1e400}',
        b'{"a": "\\ud800"}',
        b'{"a": "\xff"}',
        b"[" * 1025 + b"]" * 1025,
        b'{"a": 1} x',
        b"",
    ],
)
def test_simdjson_steps_aside_where_orjson_decides(raw: bytes) -> None:
    assert jsondoc.parse_object(raw) is None


@pytest.mark.parametrize("depth", [1020, 1022, 1023, 1024, 1025])
def test_simdjson_accepts_no_deeper_nesting_than_orjson(depth: int) -> None:
    deep = b'{"v":' + b"[" * depth + b"]" * depth + b"}"
    if jsondoc.parse_object(deep) is not None:
        orjson.loads(deep)


def test_fields_step_aside_for_repeated_keys() -> None:
    # simdjson's lookup finds the first of repeated keys, orjson keeps the last
    root = jsondoc.parse_object(b'{"a": 1, "b": 2, "a": 3}')
    assert root is not None and root["a"] == 1
    assert jsondoc.fields(root, {"b"}) is None
    assert jsondoc.plain(root) == orjson.loads(b'{"a": 1, "b": 2, "a": 3}')


def test_fields_are_plain_values_but_the_lazy_array() -> None:
    root = jsondoc.parse_object(b'{"\\u0061": [1, 2], "b": {"c": [3]}, "d": 4}')
    assert root is not None
    assert jsondoc.fields(root, {"a", "b", "e"}) == {"a": [1, 2], "b": {"c": [3]}}
    found = jsondoc.fields(root, {"a", "b"}, lazy="a")
    assert found is not None and isinstance(found["a"], simdjson.Array)
    assert bytes(found["a"].as_buffer(of_type="i")) == np.array([1, 2], np.int64).tobytes()


@pytest.mark.parametrize(
    ("rows", "shape"),
    [
        (b"[[1, 2], [3, 4]]", (2, 2)),
        (b"[1, 2, 3]", (3,)),
        (b"[[], []]", (2, 0)),
        (b"[[[1], [2]], [[3], [4]]]", (2, 2, 1)),
        (b'[["a", "b"]]', (1, 2)),
        (b"[[1, 2], [3]]", None),  # ragged
        (b"[[1], [2, 3], []]", None),
        (b"[[1, 2], [3, [4]]]", None),  # a list among numbers: counted in the text
        (b"[[1, []], [[2, 3], 4]]", None),
        (b"[[1, 2], 3]", None),
        (b'[["[", "b"]]', None),  # a bracket in a string: conservative
        (b"[" * 33 + b"1" + b"]" * 33, None),  # deeper than the walk goes
    ],
)
def test_rows_shape(rows: bytes, shape: tuple[int, ...] | None) -> None:
    body = b'{"instances": ' + rows + b"}"
    root = jsondoc.parse_object(body)
    assert root is not None
    rows = root["instances"]
    assert isinstance(rows, simdjson.Array)
    assert jsondoc.rows_shape(rows, body) == shape
    if shape is not None:
        assert np.asarray(orjson.loads(body)["instances"]).shape == shape


# --- The fast path is the one taken, and its fallbacks are where they should be ---------------


def infer_body(datatype: str, shape: list[int], data: str) -> bytes:
    doc = f'{{"inputs": [{{"name": "x", "datatype": "{datatype}", "shape": {shape}, "data": {data}}}]}}'
    return doc.encode()


@contextmanager
def fast_path_only() -> Iterator[None]:
    """Fail if orjson parses the body, or tensor data or the document becomes Python lists."""
    real_plain, real_numbers = jsondoc.plain, codec._decode_numbers

    def plain(value: Any) -> Any:
        assert not isinstance(value, simdjson.Object), "the document became a dict"
        assert not (isinstance(value, simdjson.Array) and len(value) > 3), "data became a list"
        return real_plain(value)

    def numbers(*args: Any) -> Any:
        array = real_numbers(*args)
        assert array is not None, "the list path decoded the data"
        return array

    def loads(body: Any) -> Any:
        raise AssertionError("orjson parsed the body")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsondoc, "plain", plain)
        patch.setattr(codec, "_decode_numbers", numbers)
        patch.setattr(oip, "loads", loads)
        yield


@pytest.mark.parametrize(
    ("datatype", "shape", "data"),
    [
        ("FP32", [1, 4], "[0.5, -1, 2e3, -0]"),
        ("FP32", [2, 2], "[[0.5, -1], [2e3, 7]]"),
        ("FP16", [4], "[1, 2.5, 65504, -3]"),
        ("FP64", [4], "[1e300, -5e-324, 2, 3]"),
        ("INT64", [4], "[-9223372036854775808, 0, 1, 9223372036854775807]"),
        ("UINT64", [4], "[18446744073709551615, 0, 1, 2]"),
        ("INT8", [2, 2], "[[-128, 127], [0, 1]]"),
        ("UINT8", [4], "[0, 255, 1, 2]"),
    ],
)
def test_numeric_tensors_go_straight_into_numpy(datatype: str, shape: list[int], data: str) -> None:
    body = infer_body(datatype, shape, data)
    expected = outcome(lambda: oip._parse_infer_orjson(body))
    with fast_path_only():
        assert outcome(lambda: parse_infer(body)) == expected


def test_predict_rows_go_straight_into_numpy() -> None:
    body = orjson.dumps({"instances": [[0.5, 1, 2, 3], [4, 5, 6, -7.25]]})
    specs = (TensorSpec("x", "FP32", (-1, 4)),)
    expected = outcome(lambda: oip._parse_predict_orjson(body, specs))
    with fast_path_only():
        assert outcome(lambda: parse_predict(body, specs)) == expected


@pytest.mark.parametrize(
    ("datatype", "data", "why"),
    [
        ("FP32", "[1152921573326323713, 0, 1, 2]", "an integer past 2**53 rounds differently"),
        ("FP32", "[1152921573326323713, 0.5, 1, 2]", "beside a float, it is a double to numpy too"),
        ("FP16", "[1e6, 1, 2, 3]", "overflow: the list path words the error"),
        ("INT64", "[1.0, 2, 3, 4]", "a whole float is an integer to the list path"),
        ("INT64", "[9223372036854775808, 1, 2, 3]", "past int64"),
        ("UINT8", "[-1, 1, 2, 3]", "negative: checked on the int64 buffer, no fallback needed"),
        ("FP32", "[true, 1, 2, 3]", "booleans beside numbers are numbers to numpy"),
        ("BOOL", "[true, false, true, true]", "booleans are checked value by value"),
        ("BOOL", "[1, 0, 1, 1]", "numbers for BOOL are refused value by value"),
        ("BYTES", '["a", "b", "c", "d"]', "strings"),
        ("FP32", "[null, 1, 2, 3]", "null"),
    ],
)
def test_edge_values_give_the_orjson_result(datatype: str, data: str, why: str) -> None:
    body = infer_body(datatype, [4], data)
    assert outcome(lambda: parse_infer(body)) == outcome(lambda: oip._parse_infer_orjson(body))


@pytest.mark.parametrize(
    "rows",
    [
        '[{"x": 1}, {"x": 2}]',  # rows keyed by input name
        '[{"x": [1, 2]}, {"x": [3, 4]}]',
        '[1, {"x": 2}]',
        "[[1, 2], [3, [4]]]",  # ragged, though it counts 4 numbers
        '[["[", 2], [3, 4]]',  # a bracket in a string: the general path decides
        '[[1, 2], [3, 4]], "instances": [[5]]',  # a repeated key: orjson keeps the last
        "[[true, 2], [3, 4]]",
    ],
)
def test_predict_edges_give_the_orjson_result(rows: str) -> None:
    body = f'{{"instances": {rows}}}'.encode()
    specs = (TensorSpec("x", "FP32", (-1, 2)),)
    expected = outcome(lambda: oip._parse_predict_orjson(body, specs))
    assert outcome(lambda: parse_predict(body, specs)) == expected


def test_ragged_fp16_overflow_fails_as_it_always_has() -> None:
    # The list path's finiteness check cannot read an object array: a TypeError, kept as is.
    body = infer_body("FP16", [3], "[[1e6], [1, 2]]")
    with pytest.raises(TypeError):
        oip._parse_infer_orjson(body)
    assert outcome(lambda: parse_infer(body)) == outcome(lambda: oip._parse_infer_orjson(body))
