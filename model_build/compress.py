"""Offline graph optimization and quantization (fp16, dynamic int8, calibrated static int8)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from functions.core.errors import MaasError
from functions.core.manifest import QUANTIZATIONS

from .examples.base import Arrays

CALIBRATION_BATCH: Final = 16


# Operators whose presence proves a quantizer did something.
QUANTIZED_OPS: Final = {
    "int8-dynamic": {
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "DynamicQuantizeMatMul",
        "QAttention",
    },
    "int8-static": {"QuantizeLinear", "QLinearConv", "QLinearMatMul"},
}


class BuildError(MaasError):
    """A build step that cannot go on; nothing is published."""


def check_mode(mode: str) -> str:
    """Return `mode` if it is a known quantization mode."""
    if mode not in QUANTIZATIONS:
        raise BuildError(f"unknown quantization {mode!r}; choose one of {', '.join(QUANTIZATIONS)}")
    return mode


def optimize(model: bytes) -> bytes:
    """onnxruntime's offline basic optimizations (constant folding, redundant nodes).

    Basic only: the extended and layout levels are specific to the machine and execution provider
    that run them, so they are applied when a session is created, not baked into the artifact.
    """
    import onnxruntime as ort

    from functions.core.sessions import custom_op_library

    from .inspect_onnx import custom_ops_of

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        for library in custom_ops_of(model):  # a tokenizer in the graph, say
            options.register_custom_ops_library(custom_op_library(library))
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return _without_value_info(out.read_bytes())


def _without_value_info(model: bytes) -> bytes:
    """Drop intermediate shape hints: after fusions some are stale and break shape inference."""
    import onnx

    proto = onnx.load_model_from_string(model)
    del proto.graph.value_info[:]
    data: bytes = proto.SerializeToString()
    return data


def quantize(model: bytes, mode: str, calibration: Arrays) -> tuple[bytes, dict[str, Any]]:
    """Return the model in `mode` and a description of what was done (for the manifest)."""
    check_mode(mode)
    if mode == "none":
        return model, {}
    if mode == "fp16":
        return _fp16(model)
    with _quiet_quantizer(), tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        src.write_bytes(model)
        try:
            details = (
                _dynamic(src, dst) if mode == "int8-dynamic" else _static(src, dst, calibration)
            )
        except BuildError:
            raise
        except Exception as exc:  # onnxruntime's quantizer raises plain RuntimeError/ValueError
            raise BuildError(f"{mode} quantization failed for this model: {exc}") from None
        result = dst.read_bytes()
    expected = QUANTIZED_OPS[mode]
    if not _op_types(result) & expected:
        raise BuildError(
            f"{mode} quantization left the model unchanged: onnxruntime quantized none of its "
            f"operators (no {', '.join(sorted(expected))} in the result)"
        )
    return result, details


class _QuantizerAdvice(logging.Filter):
    """Drops what onnxruntime's quantizer logs below ERROR; every other record passes."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self._folder = folder

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(self._folder)


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Silence the quantizer's advice ("consider pre-processing", per-tensor notes) for one call.

    It logs through the module-level `logging.warning`, on the root logger itself, so a filter on
    the root logger drops exactly those records: a logger's filters do not see records propagated
    from other loggers, and no level changes.
    """
    import onnxruntime.quantization

    quiet = _QuantizerAdvice(f"{Path(onnxruntime.quantization.__file__).parent}{os.sep}")
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def _op_types(model: bytes) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load_model_from_string(model).graph.node}


def _fp16(model: bytes) -> tuple[bytes, dict[str, Any]]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load_model_from_string(model)
    before = sum(t.data_type == onnx.TensorProto.FLOAT for t in proto.graph.initializer)
    # keep_io_types: clients keep sending and receiving FP32; the weights and math are fp16.
    try:
        converted = convert_float_to_float16(proto, keep_io_types=True)
    except Exception as exc:
        raise BuildError(f"fp16 conversion failed for this model: {exc}") from None
    _sort_topologically(converted.graph)
    after = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in converted.graph.initializer)
    if before == 0 or after == 0:
        raise BuildError("nothing to convert to fp16: the model has no float weights")
    data: bytes = converted.SerializeToString()
    return data, {"method": "onnxruntime.transformers.float16", "keep_io_types": True}


def _sort_topologically(graph: Any) -> None:
    """Order nodes so each comes after its inputs' producers.

    The fp16 converter appends the Cast nodes of `keep_io_types` after their consumers, which
    onnx.checker rejects ("Nodes in a graph must be topologically sorted").
    """
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise BuildError("the converted graph has a cycle or a missing input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def _dynamic(src: Path, dst: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    present = _op_types(src.read_bytes())
    ops = sorted(present & {"MatMul", "Gemm", "Attention", "LSTM", "GRU"})
    if not ops:
        raise BuildError(
            "nothing to quantize dynamically: the model has no MatMul, Gemm, Attention, LSTM or "
            "GRU (dynamic int8 is not applied to convolutions: it is slower than fp32 here)"
        )
    # The quantizer rewrites Gemm as MatMul + Add before quantizing, so MatMul must be eligible.
    # Embedding tables (Gather from a weight) are stored int8 too: in a small transformer they
    # are a third of the weights, and the gate judges what that costs.
    gathers = {"Gather"} & present
    eligible = sorted({*ops, "MatMul", *gathers} if "Gemm" in ops else {*ops, *gathers})
    # Per channel: a scale per output column, closer to fp32, and no slower here (measured)
    quantize_dynamic(
        src, dst, op_types_to_quantize=eligible, weight_type=QuantType.QInt8, per_channel=True
    )
    return {
        "method": "dynamic",
        "weight_type": "int8",
        "per_channel": True,
        "op_types": sorted({*ops, *gathers}),
    }


class _Reader:
    """Feeds calibration batches to onnxruntime's calibrator."""

    def __init__(self, calibration: Arrays) -> None:
        rows = len(next(iter(calibration.values())))
        self._batches: Iterator[dict[str, Any]] = (
            {name: array[i : i + CALIBRATION_BATCH] for name, array in calibration.items()}
            for i in range(0, rows, CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def _static(src: Path, dst: Path, calibration: Arrays) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantizable = {"Conv", "MatMul", "Gemm", "ConvTranspose"}
    if not _op_types(src.read_bytes()) & quantizable:
        raise BuildError(
            "nothing to quantize: the model has no Conv, ConvTranspose, MatMul or Gemm "
            "(operators such as the ai.onnx.ml LinearClassifier have no int8 form)"
        )
    rows = len(next(iter(calibration.values())))
    quantize_static(
        src,
        dst,
        _Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return {
        "method": "static",
        "format": "QDQ",
        "per_channel": True,
        "activations": "uint8",
        "weights": "int8",
        "calibration": "MinMax",
        "calibration_rows": rows,
    }
