"""The Open Inference Protocol datatype table: OIP name <-> numpy dtype <-> ONNX type."""

from __future__ import annotations

from typing import Final

import numpy as np

from .errors import InvalidInput

# OIP datatype -> numpy dtype. BYTES is an object array of `bytes` or `str`.
OIP_TO_NUMPY: Final[dict[str, np.dtype[np.generic]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
DATATYPES: Final = tuple(OIP_TO_NUMPY)
# numpy dtype -> OIP datatype (BYTES is chosen by kind: any object, str or bytes array).
_NUMPY_TO_OIP: Final[dict[np.dtype[np.generic], str]] = {
    dtype: name for name, dtype in OIP_TO_NUMPY.items() if name != "BYTES"
}

# onnxruntime's type strings (`NodeArg.type`) -> OIP datatype.
ONNX_TO_OIP: Final[dict[str, str]] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def numpy_dtype(datatype: str) -> np.dtype[np.generic]:
    """Return the numpy dtype for an OIP datatype, or raise InvalidInput naming the choices."""
    try:
        return OIP_TO_NUMPY[datatype]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        ) from None


def oip_datatype(dtype: np.dtype[np.generic]) -> str:
    """Return the OIP datatype for a numpy dtype (strings and bytes are BYTES)."""
    found = _NUMPY_TO_OIP.get(dtype)
    if found is not None:
        return found
    if dtype.kind in "OUS":
        return "BYTES"
    for name, candidate in OIP_TO_NUMPY.items():  # an equal dtype of another byte order, say
        if candidate == dtype:
            return name
    raise InvalidInput(f"numpy dtype {dtype} has no Open Inference Protocol datatype")
