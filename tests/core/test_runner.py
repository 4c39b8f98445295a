"""The runner checks inputs against the manifest, runs, and honours output selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.core.errors import InvalidInput
from functions.core.runner import Runner
from functions.core.sessions import OrtSessionFactory
from model_build.inspect_onnx import manifest_for
from tests import models


def runner_for(artifact: bytes, tmp_path: Path, name: str = "m") -> Runner:
    manifest, _ = manifest_for(artifact, name=name)
    path = tmp_path / "model.onnx"
    path.write_bytes(artifact)
    session, provider = OrtSessionFactory(intra_op_threads=1)(path, manifest)
    return Runner(manifest, session, provider=provider)


@pytest.fixture
def multi(tmp_path: Path) -> Runner:
    return runner_for(models.multi_io(), tmp_path, "multi")


FEATURES = np.arange(8, dtype=np.float32).reshape(2, 4)
IDS = np.array([5, 9], dtype=np.int64)


def test_runs_and_returns_every_output(multi: Runner) -> None:
    out = multi.run([("features", FEATURES), ("ids", IDS)])
    assert list(out) == ["scaled", "next_ids", "total"]
    assert out["scaled"].tolist() == (FEATURES * 2).tolist()
    assert out["next_ids"].tolist() == [6, 10]
    assert out["total"].tolist() == [6.0, 22.0]


def test_output_selection(multi: Runner) -> None:
    out = multi.run([("ids", IDS), ("features", FEATURES)], ["total"])
    assert list(out) == ["total"]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([("features", FEATURES)], None, "missing input 'ids'"),
        (
            [("features", FEATURES), ("ids", IDS), ("extra", IDS)],
            None,
            "unexpected input 'extra'; model 'multi' takes 'features', 'ids'",
        ),
        (
            [("features", FEATURES), ("features", FEATURES), ("ids", IDS)],
            None,
            "input 'features' is given more than once",
        ),
        (
            [("features", FEATURES.astype(np.float64)), ("ids", IDS)],
            None,
            "input 'features' has datatype FP64, expected FP32",
        ),
        (
            [("features", FEATURES.reshape(8)), ("ids", IDS)],
            None,
            "input 'features' has shape [8] (rank 1), expected rank 2 [-1, 4]",
        ),
        (
            [("features", FEATURES.reshape(4, 2)), ("ids", IDS)],
            None,
            "input 'features' has shape [4, 2], expected [-1, 4] (dimension 1 must be 4)",
        ),
        (
            [("features", FEATURES), ("ids", IDS)],
            ["nope"],
            "unknown output 'nope'; model 'multi' produces 'scaled', 'next_ids', 'total'",
        ),
        (
            [("features", FEATURES), ("ids", IDS)],
            ["total", "total"],
            "output 'total' is requested more than once",
        ),
    ],
)
def test_input_mismatches_name_the_problem(
    multi: Runner, inputs: list[tuple[str, np.ndarray]], outputs: list[str] | None, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        multi.run(inputs, outputs)
    assert str(caught.value) == message


def test_fixed_dimensions_are_enforced(tmp_path: Path) -> None:
    fixed = runner_for(models.fixed_shape(), tmp_path)
    assert fixed.run([("x", np.zeros((2, 3), np.float32))])["y"].tolist() == [[1.0] * 3] * 2
    with pytest.raises(InvalidInput, match=r"dimension 0 must be 2"):
        fixed.run([("x", np.zeros((3, 3), np.float32))])


def test_session_failures_are_reported_as_input_errors(multi: Runner) -> None:
    class Failing:
        def run(self, output_names: object, input_feed: object) -> list[object]:
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input")

    runner = Runner(multi.manifest, Failing())
    with pytest.raises(InvalidInput) as caught:
        runner.run([("features", FEATURES), ("ids", IDS)])
    assert str(caught.value) == (
        "model 'multi' rejected the inputs: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input"
    )


def _text_identity() -> bytes:
    """A one-input string model: text [-1] -> same."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "text",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model).SerializeToString()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 3), np.float64), "input 'x' has datatype FP64, expected FP32"),
        (np.zeros(6, np.float32), "input 'x' has shape [6] (rank 1), expected rank 2 [2, 3]"),
        (
            np.zeros((2, 2), np.float32),
            "input 'x' has shape [2, 2], expected [2, 3] (dimension 1 must be 3)",
        ),
    ],
)
def test_a_one_input_model_checks_as_strictly(
    tmp_path: Path, array: np.ndarray, message: str
) -> None:
    # One-input models take a shorter path when the array fits; a misfit is named as before
    fixed = runner_for(models.fixed_shape(), tmp_path)
    with pytest.raises(InvalidInput) as caught:
        fixed.run([("x", array)])
    assert str(caught.value) == message
    with pytest.raises(InvalidInput, match="unexpected input 'y'"):
        fixed.run([("y", np.zeros((2, 3), np.float32))])


def test_a_one_input_text_model_still_gets_text(tmp_path: Path) -> None:
    runner = runner_for(_text_identity(), tmp_path)
    assert runner.run([("text", np.array([b"caf\xc3\xa9", "x"], dtype=object))])[
        "same"
    ].tolist() == ["café", "x"]
    with pytest.raises(InvalidInput, match="input 'text' must be BYTES"):
        runner.run([("text", np.zeros(2, np.float64))])
