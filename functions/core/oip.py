"""Open Inference Protocol v2 and v1 `:predict` bodies <-> arrays, transport-agnostic."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, NamedTuple

import numpy as np
import orjson

from . import jsondoc
from .codec import (
    NUMERIC,
    Array,
    check_shape,
    decode_binary,
    decode_json,
    decode_json_checked,
    encode_binary,
    encode_json_data,
)
from .datatypes import oip_datatype
from .errors import InvalidInput, PayloadTooLarge
from .manifest import TensorSpec

HEADER_LENGTH = "inference-header-content-length"


@dataclass(frozen=True)
class Limits:
    """Per-request bounds, checked from the shapes before any data is decoded."""

    max_elements: int = 50_000_000
    max_batch: int = 4096

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        """Raise PayloadTooLarge naming the limit and its setting."""
        elements = prod(shape)
        if elements > self.max_elements:
            raise PayloadTooLarge(
                f"input '{name}' has {elements} elements, over the limit of {self.max_elements} "
                "(MAAS_MAX_TENSOR_ELEMENTS)"
            )
        if shape and shape[0] > self.max_batch:
            raise PayloadTooLarge(
                f"input '{name}' has a batch of {shape[0]} rows, over the limit of "
                f"{self.max_batch} (MAAS_MAX_BATCH)"
            )


NO_LIMITS = Limits(max_elements=2**62, max_batch=2**62)


class InferRequest(NamedTuple):
    """A decoded v2 infer request (a named tuple: one is made per request)."""

    inputs: list[tuple[str, Array]]
    outputs: list[str] | None = None
    binary_outputs: frozenset[str] = frozenset()
    binary_default: bool = False
    id: str | None = None
    parameters: dict[str, Any] | None = None

    def wants_binary(self, name: str) -> bool:
        """Whether output `name` is to be returned in binary form."""
        return name in self.binary_outputs or self.binary_default


def loads(body: bytes | memoryview) -> Any:
    """Parse JSON, raising InvalidInput with the parser's reason."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


def _object(value: Any, what: str, *args: object) -> dict[str, Any]:
    """`value` if it is an object; else InvalidInput naming `what` (formatted with `args` only
    then: this runs for every tensor of every request)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what.format(*args)} must be a JSON object")
    return value


def _parameters(item: dict[str, Any], what: str, *args: object) -> dict[str, Any]:
    params = item.get("parameters")
    return _object(params, what + " parameters", *args) if params else {}


# The fields the parsers read: the rest of a body is never decoded.
_REQUEST_KEYS = frozenset({"id", "inputs", "outputs", "parameters"})
_TENSOR_KEYS = frozenset({"name", "datatype", "shape", "parameters", "data"})
_PREDICT_KEYS = frozenset({"instances"})
_USUAL_TENSOR_KEYS = frozenset({"name", "datatype", "shape", "data"})


def parse_infer(
    body: bytes, header_length: int | None = None, limits: Limits = NO_LIMITS
) -> InferRequest:
    """Decode a v2 infer body; with `header_length`, tensors may follow the JSON in binary."""
    header, rest = _split(body, header_length)
    root = jsondoc.parse_object(header)
    if root is None:
        return _infer(loads(header), rest, limits)
    if header_length is None:
        usual = _usual_infer(root, limits)
        if usual is not None:
            return usual
    return _infer(_doc(root), rest, limits)


def _usual_infer(root: jsondoc.Object, limits: Limits) -> InferRequest | None:
    """The usual request (numeric JSON tensors; no outputs, no parameters) read straight from
    simdjson; None for any other, which `_infer` reads instead, to the same result.

    Every check `_infer` makes is made here in the same order, or the request goes to `_infer`;
    the tests hold both paths to the orjson reference on generated bodies.
    """
    keys = list(root)
    if len(set(keys)) != len(keys) or "outputs" in keys or "parameters" in keys:
        return None
    items = root["inputs"] if "inputs" in keys else None
    request_id = root["id"] if "id" in keys else None
    if not isinstance(items, jsondoc.Array) or not len(items):
        return None
    if request_id is not None and not isinstance(request_id, str):
        return None
    inputs: list[tuple[str, Array]] = []
    for item in items:
        if not isinstance(item, jsondoc.Object):
            return None
        names = list(item)
        if len(names) != 4 or set(names) != _USUAL_TENSOR_KEYS:
            return None  # parameters, binary data, a repeated key, something missing
        name, datatype, shape = item["name"], item["datatype"], item["shape"]
        data = item["data"]
        if not isinstance(name, str) or not name or datatype not in NUMERIC:
            return None
        if not isinstance(shape, jsondoc.Array) or not isinstance(data, jsondoc.Array):
            return None
        dims = check_shape(name, shape.as_list())
        limits.check(name, dims)
        inputs.append((name, decode_json_checked(name, datatype, dims, data)))
    return InferRequest(inputs, id=request_id, parameters={})


def _parse_infer_orjson(
    body: bytes, header_length: int | None = None, limits: Limits = NO_LIMITS
) -> InferRequest:
    """parse_infer through orjson and Python lists only: the reference the tests hold it to."""
    header, rest = _split(body, header_length)
    return _infer(loads(header), rest, limits)


def _split(body: bytes, header_length: int | None) -> tuple[memoryview, memoryview]:
    view = memoryview(body)
    if header_length is None:
        return view, view[len(view) :]
    if header_length < 0 or header_length > len(view):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header_length} is outside the body "
            f"({len(view)} bytes)"
        )
    return view[:header_length], view[header_length:]


def _infer_doc(header: memoryview) -> Any:
    """The request as orjson would give it, but each input's `data` array left for numpy to read."""
    root = jsondoc.parse_object(header)
    if root is None:
        return loads(header)
    return _doc(root)


def _doc(root: jsondoc.Object) -> Any:
    doc = jsondoc.fields(root, _REQUEST_KEYS, lazy="inputs")
    if doc is None:
        return jsondoc.plain(root)
    if isinstance(doc.get("inputs"), jsondoc.Array):
        doc["inputs"] = [_tensor(item) for item in doc["inputs"]]
    return doc


def _tensor(value: Any) -> Any:
    found = jsondoc.fields(value, _TENSOR_KEYS, lazy="data")
    return jsondoc.plain(value) if found is None else found


def _infer(doc: Any, rest: memoryview, limits: Limits) -> InferRequest:
    doc = _object(doc, "the request")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    inputs: list[tuple[str, Array]] = []
    offset = 0
    for index, raw in enumerate(items):
        item = _object(raw, "inputs[{}]", index)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"inputs[{index}] needs a 'name' string")
        datatype = item.get("datatype")
        if not isinstance(datatype, str):
            raise InvalidInput(f"input '{name}' needs a 'datatype' string")
        if "shape" not in item:
            raise InvalidInput(f"input '{name}' needs a 'shape'")
        dims = check_shape(name, item["shape"])
        limits.check(name, dims)
        size = _parameters(item, "input '{}'", name).get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidInput(f"input '{name}': binary_data_size must be an integer >= 0")
            if offset + size > len(rest):
                raise InvalidInput(
                    f"input '{name}': binary_data_size {size} runs past the end of the body"
                )
            chunk = rest[offset : offset + size]
            offset += size
            inputs.append((name, decode_binary(name, datatype, item["shape"], chunk)))
        elif "data" in item:
            inputs.append((name, decode_json_checked(name, datatype, dims, item["data"])))
        else:
            raise InvalidInput(f"input '{name}' needs 'data' or a binary_data_size parameter")
    if offset != len(rest):
        raise InvalidInput(f"{len(rest) - offset} bytes of binary data follow the last tensor")
    outputs, binary = _parse_outputs(doc.get("outputs"))
    params = _parameters(doc, "request")
    return InferRequest(
        inputs=inputs,
        outputs=outputs,
        binary_outputs=binary,
        binary_default=bool(params.get("binary_data_output", False)),
        id=request_id,
        parameters=params,
    )


def _parse_outputs(items: object) -> tuple[list[str] | None, frozenset[str]]:
    if items is None:
        return None, frozenset()
    if not isinstance(items, list):
        raise InvalidInput("'outputs' must be a list")
    names: list[str] = []
    binary: set[str] = set()
    for index, raw in enumerate(items):
        item = _object(raw, "outputs[{}]", index)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"outputs[{index}] needs a 'name' string")
        names.append(name)
        if _parameters(item, "output '{}'", name).get("binary_data"):
            binary.add(name)
    return names or None, frozenset(binary)


def _json_default(value: object) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(doc: Any) -> bytes:
    """Encode JSON with orjson, numpy arrays included."""
    return orjson.dumps(doc, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_infer_response(
    *,
    model_name: str,
    model_version: str,
    outputs: dict[str, Array],
    request: InferRequest,
) -> tuple[bytes, int | None]:
    """Encode a v2 infer response; return the body and, if any tensor is binary, the JSON length."""
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    binary = request.binary_default or request.binary_outputs
    for name, array in outputs.items():
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": oip_datatype(array.dtype),
            "shape": list(array.shape),
        }
        if binary and request.wants_binary(name):
            blob = encode_binary(array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif array.dtype.kind in "OUS":
            tensor["data"] = encode_json_data(array)
        else:
            tensor["data"] = np.ascontiguousarray(array).ravel()
        tensors.append(tensor)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = tensors
    header = dumps(doc)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def parse_predict(
    body: bytes, inputs: tuple[TensorSpec, ...], limits: Limits = NO_LIMITS
) -> list[tuple[str, Array]]:
    """Decode a v1 `{"instances": [...]}` body into named input arrays, one row per instance."""
    root = jsondoc.parse_object(body)
    if root is None:
        return _predict(loads(body), inputs, limits)
    fast = _predict_rows(root, body, inputs, limits)
    return fast if fast is not None else _predict(jsondoc.plain(root), inputs, limits)


def _parse_predict_orjson(
    body: bytes, inputs: tuple[TensorSpec, ...], limits: Limits = NO_LIMITS
) -> list[tuple[str, Array]]:
    """parse_predict through orjson and Python lists only: the reference the tests hold it to."""
    return _predict(loads(body), inputs, limits)


def _predict_rows(
    root: jsondoc.Object, body: bytes, inputs: tuple[TensorSpec, ...], limits: Limits
) -> list[tuple[str, Array]] | None:
    """One input's instances read straight into numpy; None where _predict must decide."""
    found = jsondoc.fields(root, _PREDICT_KEYS, lazy="instances")
    rows = None if found is None else found.get("instances")
    if len(inputs) != 1 or not isinstance(rows, jsondoc.Array) or not len(rows):
        return None
    _check_batch(len(rows), limits)
    if isinstance(rows[0], jsondoc.Object):  # rows keyed by input name
        return None
    shape = jsondoc.rows_shape(rows, body)
    if shape is None:  # ragged, or not provably rectangular from the text
        return None
    spec = inputs[0]
    array = decode_json(spec.name, spec.datatype, list(shape), rows)
    limits.check(spec.name, tuple(array.shape))
    return [(spec.name, array)]


def _predict(doc: Any, inputs: tuple[TensorSpec, ...], limits: Limits) -> list[tuple[str, Array]]:
    doc = _object(doc, "the request")
    instances = doc.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list")
    _check_batch(len(instances), limits)
    result = instances_to_inputs(instances, inputs)
    for name, array in result:
        limits.check(name, tuple(array.shape))
    return result


def _check_batch(count: int, limits: Limits) -> None:
    if count > limits.max_batch:
        raise PayloadTooLarge(
            f"{count} instances, over the limit of {limits.max_batch} (MAAS_MAX_BATCH)"
        )


def instances_to_inputs(
    instances: list[Any], inputs: tuple[TensorSpec, ...]
) -> list[tuple[str, Array]]:
    """Rows (values, or objects keyed by input name) -> one array per input, a row per instance."""
    if all(isinstance(row, dict) for row in instances):
        columns: dict[str, list[Any]] = {spec.name: [] for spec in inputs}
        for row in instances:
            unknown = set(row) - set(columns)
            if unknown:
                raise InvalidInput(f"unexpected input {', '.join(sorted(map(repr, unknown)))}")
            for spec in inputs:
                if spec.name not in row:
                    raise InvalidInput(f"an instance is missing input '{spec.name}'")
                columns[spec.name].append(row[spec.name])
        return [(s.name, _column(s, columns[s.name])) for s in inputs]
    if len(inputs) != 1:
        raise InvalidInput(
            "this model takes several inputs: each instance must be an object keyed by "
            + ", ".join(f"'{s.name}'" for s in inputs)
        )
    return [(inputs[0].name, _column(inputs[0], instances))]


def _column(spec: TensorSpec, values: list[Any]) -> Array:
    try:
        shape = np.asarray(values).shape
    except ValueError:  # numpy refuses inhomogeneous nesting
        raise InvalidInput(f"input '{spec.name}': instances are ragged") from None
    return decode_json(spec.name, spec.datatype, list(shape), values)


def encode_predict_response(outputs: dict[str, Array]) -> bytes:
    """Encode v1 predictions: one value per row, or one object per row for several outputs."""
    return dumps({"predictions": prediction_rows(outputs)})


def prediction_rows(outputs: dict[str, Array]) -> list[Any] | dict[str, list[Any]]:
    """One value per row, one object per row for several outputs (columns if lengths differ)."""
    columns = {name: _rows(array) for name, array in outputs.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    lengths = {len(rows) for rows in columns.values()}
    if len(lengths) != 1:
        return columns
    count = lengths.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _rows(array: Array) -> list[Any]:
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype.kind in "OUS":
        flat = encode_json_data(array)
        return np.asarray(flat, dtype=object).reshape(array.shape).tolist()  # type: ignore[no-any-return]
    rows: list[Any] = array.tolist()
    return rows
