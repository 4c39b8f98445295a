"""Bring your own model: an existing ONNX file plus the user's calibration (and eval) data."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.core.errors import InvalidInput
from functions.core.manifest import Manifest
from functions.core.runner import check_input

from .compress import BuildError
from .examples.base import Arrays, Trained
from .inspect_onnx import manifest_for, model_bytes

LABELS = "labels"


def load_npz(path: Path, what: str) -> Arrays:
    """Arrays from an .npz file; pickled objects are refused."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise BuildError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot read {what} file {path} as .npz: {exc}") from None


def check_data(arrays: Arrays, manifest: Manifest, what: str) -> tuple[Arrays, Any]:
    """Split off `labels`, and check every array against the model's inputs."""
    arrays = dict(arrays)
    inputs = {spec.name: spec for spec in manifest.inputs}
    labels = arrays.pop(LABELS, None) if LABELS not in inputs else None
    missing = sorted(set(inputs) - set(arrays))
    extra = sorted(set(arrays) - set(inputs))
    if missing or extra:
        parts = [
            f"missing {', '.join(map(repr, missing))}" if missing else "",
            f"unexpected {', '.join(map(repr, extra))}" if extra else "",
        ]
        raise BuildError(
            f"{what} data does not match the model's inputs ({'; '.join(p for p in parts if p)}); "
            f"the model takes {', '.join(repr(n) for n in inputs)}"
            + (f" (and an optional '{LABELS}' array)" if LABELS not in inputs else "")
        )
    rows = {len(a) if a.ndim else 0 for a in arrays.values()}
    if rows == {0}:
        raise BuildError(f"the {what} set is empty")
    if len(rows) != 1:
        raise BuildError(f"{what} arrays have different numbers of rows: {sorted(rows)}")
    checked: Arrays = {}
    for name, array in arrays.items():
        try:
            checked[name] = check_input(inputs[name], array)
        except InvalidInput as exc:
            raise BuildError(f"{what} data: {exc}") from None
    if labels is not None and len(labels) != rows.pop():
        raise BuildError(
            f"{what} '{LABELS}' has {len(labels)} rows, the inputs have a different count"
        )
    return checked, None if labels is None else labels.astype(np.int64)


@dataclass(frozen=True)
class TextFront:
    """Put a tokenizer in front of a brought encoder: `tokenizer.json`, class names in logit
    order, and the most word pieces per sentence (the encoder's position table)."""

    tokenizer: Path
    classes: list[str]
    max_length: int | None = None  # None: where tokenizer.json truncates, else 512


def from_onnx(
    model: Path,
    calibration: Path,
    evaluation: Path | None,
    *,
    name: str,
    text: TextFront | None = None,
) -> Trained:
    """A build input from files: the given model is the fp32 reference (with `text`, the encoder
    behind its tokenizer, so the artifact takes sentences)."""
    artifact = model_bytes(model)  # external data read in: the pipeline compresses one graph
    if text is not None:
        artifact = _text_model(artifact, text)
    manifest, _ = manifest_for(artifact, name=name)
    cal, _ = check_data(load_npz(calibration, "calibration"), manifest, "calibration")
    if evaluation is None:
        eval_inputs, eval_labels = cal, None
    else:
        eval_inputs, eval_labels = check_data(load_npz(evaluation, "eval"), manifest, "eval")
    scores = [o for o in manifest.outputs if o.datatype.startswith("FP") and len(o.shape) >= 2]
    return Trained(
        name=name,
        onnx_bytes=artifact,
        calibration=cal,
        eval_inputs=eval_inputs,
        eval_labels=eval_labels,
        score_output=(scores or list(manifest.outputs))[0].name,
        source={
            "framework": "onnx (brought by the user)",
            "file": model.name,
            **({"tokenizer": text.tokenizer.name, "classes": text.classes} if text else {}),
            "evaluated_on": "eval data" if evaluation else "calibration data (no --eval given)",
        },
    )


def _text_model(encoder: bytes, text: TextFront) -> bytes:
    import orjson

    from .textgraph import text_classifier

    if not text.classes or len(set(text.classes)) != len(text.classes):
        raise BuildError("--classes must name each class once, in the order of the logits")
    try:
        document = orjson.loads(text.tokenizer.read_bytes())
    except OSError as exc:
        raise BuildError(f"cannot read the tokenizer {text.tokenizer}: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise BuildError(f"{text.tokenizer} is not a tokenizer.json (JSON): {exc}") from None
    if not isinstance(document, dict):
        raise BuildError(f"{text.tokenizer} is not a tokenizer.json document")
    return text_classifier(encoder, document, text.classes, max_length=text.max_length)
