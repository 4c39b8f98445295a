"""Symmetric tensor codecs: OIP JSON `data` and Triton's binary tensor format <-> numpy."""

from __future__ import annotations

from collections.abc import Sequence
from math import inf, prod
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from . import jsondoc
from .datatypes import numpy_dtype, oip_datatype
from .errors import InvalidInput

Array = npt.NDArray[Any]

# Per numeric datatype: the buffer simdjson fills, and the magnitude from which the list path
# decides instead: it words the error of an FP16 overflow (from 65520), and past 2**53 an integer
# reaches a double buffer already rounded, where the list path rounds it once, straight to FP32.
_NUMBERS: Final[dict[str, tuple[Literal["d", "i", "u"], np.dtype[Any], float]]] = {
    **{t: ("i", np.dtype(np.int64), inf) for t in ("INT8", "INT16", "INT32", "INT64")},
    **{t: ("i", np.dtype(np.int64), inf) for t in ("UINT8", "UINT16", "UINT32")},
    "UINT64": ("u", np.dtype(np.uint64), inf),
    "FP16": ("d", np.dtype(np.float64), 65520.0),
    "FP32": ("d", np.dtype(np.float64), 2.0**53),
    "FP64": ("d", np.dtype(np.float64), inf),
}
# The datatypes whose JSON data numpy reads straight from simdjson.
NUMERIC: Final = frozenset(_NUMBERS)


def check_shape(name: str, shape: object) -> tuple[int, ...]:
    """Validate a request shape: a list of non-negative integers."""
    if type(shape) is list:  # what JSON gives: checked without a generator
        for d in shape:
            if type(d) is not int or d < 0:
                break
        else:
            return tuple(shape)
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(
            f"input '{name}': shape must be a list of non-negative integers, got {shape!r}"
        )
    return tuple(shape)


def _to_bytes(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise InvalidInput(f"input '{name}': BYTES data must be strings, got {type(value).__name__}")


def _flatten(data: Sequence[Any]) -> list[Any]:
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def decode_json(name: str, datatype: str, shape: Sequence[int], data: object) -> Array:
    """Decode a JSON tensor (`data` nested or flat, row-major, or a simdjson array) to `shape`."""
    return decode_json_checked(name, datatype, check_shape(name, shape), data)


def decode_json_checked(name: str, datatype: str, dims: tuple[int, ...], data: object) -> Array:
    """`decode_json` for a shape `check_shape` already returned."""
    dtype = numpy_dtype(datatype)
    if isinstance(data, jsondoc.Array):
        fast = _decode_numbers(name, datatype, dims, dtype, data)
        if fast is not None:
            return fast
        data = jsondoc.plain(data)
    if not isinstance(data, list):
        if isinstance(data, dict | type(None)):
            raise InvalidInput(f"input '{name}': data must be a list, got {type(data).__name__}")
        data = [data]
    expected = prod(dims)
    if datatype == "BYTES":
        flat = _flatten(data)
        if len(flat) != expected:
            raise InvalidInput(_count_error(name, len(flat), dims))
        array = np.empty(expected, dtype=object)
        array[:] = [_to_bytes(v, name) for v in flat]
        return array.reshape(dims)
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError):
        raw = np.asarray(_flatten(data), dtype=object)
    if raw.size != expected:
        raise InvalidInput(_count_error(name, raw.size, dims))
    if expected == 0:
        return np.empty(dims, dtype=dtype)
    return _cast(name, datatype, dtype, raw, data).reshape(dims)


def _decode_numbers(
    name: str, datatype: str, dims: tuple[int, ...], dtype: np.dtype[Any], data: jsondoc.Array
) -> Array | None:
    """Read a JSON array of numbers straight into numpy; None where only the list path is exact."""
    if datatype not in _NUMBERS:  # BOOL and BYTES are checked value by value
        return None
    of_type, buffer_dtype, limit = _NUMBERS[datatype]
    try:
        raw = np.frombuffer(data.as_buffer(of_type=of_type), buffer_dtype)
    except (TypeError, ValueError, RuntimeError):  # not all numbers, floats for integers, range
        return None
    # as_buffer flattens nested and ragged lists alike, leaf by leaf, as the list path does
    expected = prod(dims)
    if raw.size != expected:
        raise InvalidInput(_count_error(name, raw.size, dims))
    if expected == 0:
        return np.empty(dims, dtype=dtype)
    if of_type != "d":  # exact 64-bit integers: the list path's range check applies as is
        return _cast_integers(name, datatype, dtype, raw, data=raw).reshape(dims)
    if limit != inf and not _within(raw, limit):
        return None
    return raw.astype(dtype).reshape(dims)


# Past this many elements numpy's dot may start BLAS threads that would compete with onnxruntime.
_DOT_MAX = 8192


def _within(raw: Array, limit: float) -> bool:
    """Every |value| < `limit`. For small arrays through the sum of squares (one BLAS call, no
    temporary; vdot, unlike dot, does not warn when it overflows to inf): below limit**2 every
    value is below `limit`; at or over it (or inf), the exact test decides, so the answer is
    exact either way."""
    if raw.size <= _DOT_MAX and float(np.vdot(raw, raw)) < limit * limit:
        return True
    return bool(np.abs(raw).max() < limit)


def _count_error(name: str, count: int, dims: tuple[int, ...]) -> str:
    return f"input '{name}': data has {count} elements but shape {list(dims)} needs {prod(dims)}"


def _cast(name: str, datatype: str, dtype: np.dtype[Any], raw: Array, data: object) -> Array:
    """Cast JSON values to `dtype`, refusing any cast that would change a value."""
    kind = raw.dtype.kind
    if kind == "O":
        if not all(isinstance(v, int | float | bool) for v in raw.flat):
            raise InvalidInput(f"input '{name}': {datatype} data must be numbers")
        kind = "f"
    if kind in "US":
        raise InvalidInput(f"input '{name}': {datatype} data must be numbers, got strings")
    if dtype.kind == "b":
        if kind != "b":
            raise InvalidInput(f"input '{name}': BOOL data must be true or false")
        return raw.astype(np.bool_)
    if kind == "b":
        raise InvalidInput(f"input '{name}': {datatype} data must be numbers, got booleans")
    if dtype.kind in "iu":
        return _cast_integers(name, datatype, dtype, raw, data)
    with np.errstate(over="ignore"):
        cast = raw.astype(dtype)
    # Common case first: every value finite after the cast. Otherwise, only values that were
    # already infinite (or NaN) in the JSON may be non-finite now: the rest overflowed.
    if not np.isfinite(cast).all() and not np.array_equal(np.isfinite(cast), np.isfinite(raw)):
        raise InvalidInput(f"input '{name}': a value is out of range for {datatype}")
    return cast


def _cast_integers(
    name: str, datatype: str, dtype: np.dtype[Any], raw: Array, data: object
) -> Array:
    """Cast to an integer dtype only when every value is a whole number within its range."""
    info = np.iinfo(dtype)
    if raw.size == 0:
        return raw.astype(dtype)
    if raw.dtype.kind == "O":  # mixed types: check each value in Python
        for value in raw.flat:
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            if not whole or not info.min <= value <= info.max:
                raise _range_error(name, datatype, info)
        return raw.astype(dtype)
    if raw.dtype.kind in "iu":
        if int(raw.min()) < info.min or int(raw.max()) > info.max:
            raise _range_error(name, datatype, info)
        return raw.astype(dtype)
    # float64 here may be whole numbers too large for float precision (uint64): decode exactly
    try:
        with np.errstate(invalid="ignore"):
            exact = np.asarray(data, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        raise _range_error(name, datatype, info) from None
    if not (
        np.isfinite(raw).all() and np.array_equal(exact.astype(np.float64).ravel(), raw.ravel())
    ):
        raise _range_error(name, datatype, info)
    return exact


def _range_error(name: str, datatype: str, info: np.iinfo[Any]) -> InvalidInput:
    return InvalidInput(
        f"input '{name}': {datatype} data must be integers in [{info.min}, {info.max}]"
    )


def encode_json_data(array: Array) -> list[Any]:
    """Flatten an array to the JSON `data` list (BYTES as UTF-8 strings)."""
    if array.dtype.kind in "OUS":
        return [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.flat
        ]
    flat: list[Any] = array.ravel().tolist()
    return flat


def decode_binary(name: str, datatype: str, shape: Sequence[int], raw: bytes | memoryview) -> Array:
    """Decode Triton's binary tensor bytes (BYTES: 4-byte little-endian length + bytes each)."""
    dims = check_shape(name, shape)
    dtype = numpy_dtype(datatype)
    count = prod(dims)
    if datatype != "BYTES":
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(
                f"input '{name}': binary data has {len(raw)} bytes but shape {list(dims)} of "
                f"{datatype} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    view = memoryview(raw)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise InvalidInput(f"input '{name}': truncated BYTES element length")
        size = int.from_bytes(view[offset : offset + 4], "little")
        offset += 4
        if offset + size > len(view):
            raise InvalidInput(f"input '{name}': truncated BYTES element")
        items.append(bytes(view[offset : offset + size]))
        offset += size
    if len(items) != count:
        raise InvalidInput(_count_error(name, len(items), dims))
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(dims)


def encode_binary(array: Array) -> bytes:
    """Encode an array as Triton binary tensor bytes (the inverse of `decode_binary`)."""
    if array.dtype.kind in "OUS":
        parts: list[bytes] = []
        for value in array.flat:
            item = value if isinstance(value, bytes) else str(value).encode()
            parts.append(len(item).to_bytes(4, "little"))
            parts.append(item)
        return b"".join(parts)
    datatype = oip_datatype(array.dtype)
    little = np.ascontiguousarray(array, dtype=numpy_dtype(datatype).newbyteorder("<"))
    return little.tobytes()
