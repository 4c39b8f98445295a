"""A tabular classifier: a scikit-learn pipeline (scaling + MLP) on breast_cancer, via skl2onnx."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import numpy as np

from .base import Trained


def train_tabular(
    quick: bool = False, progress: Callable[[int, int], None] | None = None
) -> Trained:
    """30 features in, `label` and `probabilities` out; 80/20 split, 64-row calibration slice."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32), y.astype(np.int64), test_size=0.2, random_state=0, stratify=y
    )
    x_fit, x_cal, y_fit = x_train[64:], x_train[:64], y_train[64:]
    iterations = 60 if quick else 400
    pipeline = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=iterations, random_state=0),
    )
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # a short (quick) run stops before convergence on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(x_fit, y_fit)
    if progress:
        progress(1, 1)
    model = to_onnx(
        pipeline,
        initial_types=[("features", FloatTensorType([None, x.shape[1]]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        final_types=None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    for output, new in zip(model.graph.output, ("label", "probabilities"), strict=True):
        _rename(model, output.name, new)
    return Trained(
        name="tabular",
        onnx_bytes=model.SerializeToString(),
        calibration={"features": x_cal},
        eval_inputs={"features": x_test},
        eval_labels=y_test,
        score_output="probabilities",
        source={
            "framework": "scikit-learn",
            "framework_version": version("scikit-learn"),
            "exporter": f"skl2onnx {version('skl2onnx')}",
            "dataset": "sklearn.datasets.load_breast_cancer (80/20 stratified split)",
            "max_iter": iterations,
        },
    )


def _rename(model: object, old: str, new: str) -> None:
    """Rename a graph output everywhere it is produced or listed."""
    graph = model.graph  # type: ignore[attr-defined]
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
    for output in graph.output:
        if output.name == old:
            output.name = new
