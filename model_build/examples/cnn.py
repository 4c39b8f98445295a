"""A small CNN in torch on scikit-learn's 8x8 digits, exported with torch.export to ONNX."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from .base import Trained

EPOCHS = 30
QUICK_EPOCHS = 3


def _network() -> torch.nn.Module:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4x4 -> 2x2
        nn.Flatten(),
        nn.Linear(512, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def train_cnn(quick: bool = False, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Train on 80% of digits (less a 128-image calibration slice), hold out 20% for evaluation."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    x, y = load_digits(return_X_y=True)
    images = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, y.astype(np.int64), test_size=0.2, random_state=0, stratify=y
    )
    x_fit, x_cal, y_fit = x_train[128:], x_train[:128], y_train[128:]
    model = _network()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    inputs, targets = torch.from_numpy(x_fit), torch.from_numpy(y_fit)
    epochs = QUICK_EPOCHS if quick else EPOCHS
    generator = torch.Generator().manual_seed(0)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss_fn(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
        if progress:
            progress(epoch + 1, epochs)
    model.eval()
    return Trained(
        name="cnn",
        onnx_bytes=export(model, x_test[:2]),
        calibration={"image": x_cal},
        eval_inputs={"image": x_test},
        eval_labels=y_test,
        score_output="logits",
        source={
            "framework": "torch",
            "framework_version": version("torch"),
            "exporter": f"torch.onnx.export (torch.export), onnxscript {version('onnxscript')}",
            "dataset": "sklearn.datasets.load_digits as 1x8x8 images (80/20 stratified split)",
            "epochs": epochs,
        },
    )


def export(model: torch.nn.Module, sample: np.ndarray) -> bytes:
    """Export with a dynamic batch axis: input `image` [-1, 1, 8, 8], output `logits` [-1, 10]."""
    return export_model(model, sample, input_name="image", output_name="logits")


def export_model(
    model: torch.nn.Module, sample: np.ndarray, *, input_name: str, output_name: str
) -> bytes:
    """torch.export-based ONNX export (opset 18) with a dynamic batch axis."""
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    with warnings.catch_warnings():
        # torch's own exporter trips a deprecation inside torch (LeafSpec); not ours to fix
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
        program = torch.onnx.export(
            model,
            (torch.from_numpy(sample),),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    data: bytes = program.model_proto.SerializeToString()
    return data
