"""The one way sessions are made: the graph rewrites left out on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from functions.core.sessions import CPU_DISABLED_OPTIMIZERS, make_session


def add_then_layer_norm() -> bytes:
    """Add + LayerNormalization over [batch, sequence, hidden]: what SkipLayerNormFusion rewrites."""
    hidden = 8
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["s"]),
            helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1),
        ],
        "skip",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", "s", hidden]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", "s", hidden]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.linspace(0.5, 1.5, hidden, dtype=np.float32), "gamma"),
            numpy_helper.from_array(np.linspace(-1, 1, hidden, dtype=np.float32), "beta"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


def optimized_ops(model: bytes, tmp_path: Path, disabled: list[str]) -> list[str]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(
        model, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
    )
    return [node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]


def test_the_disabled_rewrites_are_ones_onnxruntime_knows(tmp_path: Path) -> None:
    # onnxruntime ignores an unknown name: a renamed rewrite would silently come back.
    model = add_then_layer_norm()
    assert optimized_ops(model, tmp_path, []) == ["SkipLayerNormalization"]
    assert optimized_ops(model, tmp_path, list(CPU_DISABLED_OPTIMIZERS)) == [
        "Add",
        "LayerNormalization",
    ]


def test_a_cpu_session_answers_as_the_graph_says() -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, 3, 8), dtype=np.float32) for _ in range(2))
    (y,) = make_session(add_then_layer_norm(), 1).run(None, {"a": a, "b": b})
    s = a + b
    normal = (s - s.mean(-1, keepdims=True)) / np.sqrt(s.var(-1, keepdims=True) + 1e-5)
    expected = normal * np.linspace(0.5, 1.5, 8) + np.linspace(-1, 1, 8)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
