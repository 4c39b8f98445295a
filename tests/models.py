"""Small real ONNX models for tests, built with onnx.helper."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

# OIP datatype -> ONNX element type, for the identity model of every datatype.
ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


def _save(graph: onnx.GraphProto, opset: int = 17) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def identity_all_types() -> bytes:
    """One input `x_<type>` and output `y_<type>` of shape [-1, 3] per OIP datatype."""
    inputs, outputs, nodes = [], [], []
    for datatype, elem in ONNX_TYPES.items():
        suffix = datatype.lower()
        inputs.append(helper.make_tensor_value_info(f"x_{suffix}", elem, [None, 3]))
        outputs.append(helper.make_tensor_value_info(f"y_{suffix}", elem, [None, 3]))
        nodes.append(helper.make_node("Identity", [f"x_{suffix}"], [f"y_{suffix}"]))
    return _save(helper.make_graph(nodes, "identity_all_types", inputs, outputs))


def multi_io() -> bytes:
    """Float and int64 inputs, three outputs: scaled = 2*features, next_ids = ids+1, total."""
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Mul", ["features", "two"], ["scaled"]),
        helper.make_node("Add", ["ids", "one"], ["next_ids"]),
        helper.make_node("ReduceSum", ["features", "axes"], ["total"], keepdims=0),
    ]
    outputs = [
        helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["batch", 4]),
        helper.make_tensor_value_info("next_ids", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch"]),
    ]
    graph = helper.make_graph(nodes, "multi_io", [features, ids], outputs, [two, one, axes])
    return _save(graph)


def fixed_shape() -> bytes:
    """An input with a fixed shape [2, 3]: output = input + 1."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    node = helper.make_node("Add", ["x", "one"], ["y"])
    return _save(helper.make_graph([node], "fixed_shape", [x], [y], [one]))


def slow_model(repeats: int = 200, size: int = 1024) -> bytes:
    """x [1, size] -> y (a scalar): a square matrix whose rows all differ, `repeats` MatMul+Relu."""
    import numpy as np
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    weight = numpy_helper.from_array(
        (rng.standard_normal((size, size)) / size**0.5).astype(np.float32), "w"
    )
    rows = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), "rows")
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [size, size])
    nodes = [
        helper.make_node("Expand", ["x", "shape"], ["e"]),
        helper.make_node("Add", ["e", "rows"], ["h0"]),  # every row differs: nothing to share
    ]
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]))
        nodes.append(helper.make_node("Relu", [f"m{i}"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("ReduceSum", [f"h{repeats}"], ["y"], keepdims=0))
    graph = helper.make_graph(nodes, "slow", [x], [y], [weight, rows, shape])
    return _save(graph, opset=17)
