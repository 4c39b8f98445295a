"""Models whose weights live in external data files, of any size, written without a copy in memory.

An embedding table looked up by token ids, averaged, then two dense layers: the table can be
made as large as wanted (past protobuf's 2 GB, where a model must keep its weights outside the
graph), while a run touches only the rows it looks up. The tests and the benchmark generate
these on the fly; nothing is committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

Layout = Literal["one", "many", "nested"]
WIDTH = 256
IDS = 4  # token ids per row
_CHUNK_ROWS = 1 << 14


def write_embedding_model(
    folder: Path, *, table_bytes: int, layout: Layout = "one", seed: int = 0
) -> Path:
    """Write `model.onnx` and its external data into `folder`; return the graph's path.

    `layout`: `one` data file beside the graph (`model.onnx.data`), `many` (a file per tensor,
    as `onnx.save_model(..., all_tensors_to_one_file=False)` writes them), or `nested` (one
    file in a subfolder, `weights/params.bin`).
    """
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = max(16, table_bytes // (WIDTH * 4))
    tensors: list[tuple[str, tuple[int, ...], str]] = [
        ("emb", (rows, WIDTH), _location(layout, "emb")),
        ("w1", (WIDTH, 64), _location(layout, "w1")),
        ("w2", (64, 10), _location(layout, "w2")),
    ]
    offsets: dict[str, int] = {}
    initializers = []
    for name, shape, location in tensors:
        path = folder / location
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = offsets.get(location, 0)
        with path.open("ab") as handle:
            assert handle.tell() == offset
            if name == "emb":
                for start in range(0, rows, _CHUNK_ROWS):
                    count = min(_CHUNK_ROWS, rows - start)
                    handle.write(rng.standard_normal((count, WIDTH), dtype=np.float32).tobytes())
            else:
                scale = np.float32(1 / np.sqrt(shape[0]))
                handle.write((rng.standard_normal(shape, dtype=np.float32) * scale).tobytes())
            length = handle.tell() - offset
        offsets[location] = offset + length
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", length)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        initializers.append(tensor)
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["looked_up"], axis=0),
        helper.make_node("ReduceMean", ["looked_up", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["activated"]),
        helper.make_node("MatMul", ["activated", "w2"], ["scores"]),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        nodes,
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", IDS])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])],
        [*initializers, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    target = folder / "model.onnx"
    target.write_bytes(model.SerializeToString())
    return target


def embedding_rows(path: Path) -> int:
    """The number of rows of a written model's table (for ids within range)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(next(t for t in model.graph.initializer if t.name == "emb").dims[0])


def sample_ids(rows: int, batch: int, seed: int = 1) -> np.ndarray:
    """Token ids for a batch, spread over the whole table."""
    return np.random.default_rng(seed).integers(0, rows, size=(batch, IDS), dtype=np.int64)


def _location(layout: Layout, tensor: str) -> str:
    if layout == "one":
        return "model.onnx.data"
    if layout == "many":
        return tensor
    return "weights/params.bin"
