"""Quantization keeps its noise to itself: the process's logging is left as it was."""

from __future__ import annotations

import logging

import pytest

from model_build.compress import optimize, quantize
from model_build.examples import Trained


def test_quantizing_silences_only_the_quantizer_advice(
    tabular: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    # Given logging at INFO (the quantizer logs advice at INFO and WARNING on the root logger)
    caplog.set_level(logging.INFO)
    root = logging.getLogger()
    filters = list(root.filters)

    # When a model is quantized, then another logger and the root logger are still heard
    quantize(optimize(tabular.onnx_bytes), "int8-static", tabular.calibration)
    logging.getLogger("maas.test").warning("a named logger")
    logging.warning("the root logger")

    # Then none of the quantizer's advice was recorded, and no level or filter was left behind
    assert [r.getMessage() for r in caplog.records] == ["a named logger", "the root logger"]
    assert root.level == logging.INFO
    assert root.filters == filters
