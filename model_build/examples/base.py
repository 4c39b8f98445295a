"""What every example hands the build pipeline: an fp32 ONNX model and real data to judge it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class Trained:
    """An exported fp32 model with its calibration slice and held-out evaluation split."""

    name: str
    onnx_bytes: bytes
    calibration: Arrays  # a held-out slice of real training inputs, by input name
    eval_inputs: Arrays  # the held-out test split, by input name
    eval_labels: npt.NDArray[np.int64] | None
    score_output: str  # the output whose argmax (or value, for labels) is the prediction
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """A named example: `train(quick)` trains it for real (`quick` for tests)."""

    name: str
    summary: str
    train: Callable[[bool, Callable[[int, int], None] | None], Trained]
