"""A scikit-learn digits classifier (scaler + logistic regression) exported with skl2onnx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import numpy.typing as npt

from .base import Trained


@dataclass(frozen=True)
class TrainedModel:
    """An exported model and the held-out split it was measured on."""

    onnx_bytes: bytes
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    x_calibration: npt.NDArray[np.float32]
    accuracy: float
    source: dict[str, Any]


def as_example(quick: bool = False, progress: Callable[[int, int], None] | None = None) -> Trained:
    """The digits classifier in the build pipeline's terms (64-row calibration slice)."""
    model = train_digits()
    if progress:
        progress(1, 1)
    return Trained(
        name="digits",
        onnx_bytes=model.onnx_bytes,
        calibration={"pixels": model.x_calibration},
        eval_inputs={"pixels": model.x_test},
        eval_labels=model.y_test,
        score_output="probabilities",
        source=model.source,
    )


def train_digits(*, seed: int = 0) -> TrainedModel:
    """Train on 8x8 digits (64 pixels in, label and 10 probabilities out) and export to ONNX."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32), y.astype(np.int64), test_size=0.2, random_state=seed, stratify=y
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    pipeline.fit(x_train[64:], y_train[64:])
    accuracy = float(pipeline.score(x_test, y_test))
    model = to_onnx(
        pipeline,
        initial_types=[("pixels", FloatTensorType([None, 64]))],
        final_types=[
            ("label", Int64TensorType([None])),
            ("probabilities", FloatTensorType([None, 10])),
        ],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    )
    return TrainedModel(
        onnx_bytes=model.SerializeToString(),
        x_test=x_test,
        y_test=y_test,
        x_calibration=x_train[:64],
        accuracy=accuracy,
        source={
            "framework": "scikit-learn",
            "framework_version": version("scikit-learn"),
            "exporter": f"skl2onnx {version('skl2onnx')}",
            "dataset": "sklearn.datasets.load_digits (80/20 stratified split)",
        },
    )
