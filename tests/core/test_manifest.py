"""Manifests parse, validate and serialize symmetrically."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.errors import ManifestError
from functions.core.manifest import Manifest, TensorSpec


def sample() -> Manifest:
    return Manifest(
        name="digits",
        version=2,
        sha256="a" * 64,
        size_bytes=4523,
        opset=17,
        inputs=(TensorSpec("pixels", "FP32", (-1, 64)),),
        outputs=(
            TensorSpec("label", "INT64", (-1,)),
            TensorSpec("probabilities", "FP32", (-1, 10)),
        ),
        created_at="2026-11-22T10:00:00+00:00",
        quantization="int8-static",
        source={"framework": "scikit-learn", "parent_version": 1},
        metrics={"accuracy": 0.97, "agreement": 1.0},
        labels={"team": "vision"},
    )


def test_round_trip() -> None:
    manifest = sample()
    assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_serialized_fields() -> None:
    doc = sample().to_dict()
    assert doc["schema_version"] == 1
    assert doc["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert doc["source"]["parent_version"] == 1


def broken(**changes: Any) -> dict[str, Any]:
    doc = sample().to_dict()
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "manifest must be a JSON object"),
        (broken(schema_version=9), "unsupported manifest schema_version 9"),
        (broken(sha256="xyz"), "manifest sha256 must be 64 lowercase hex digits"),
        (broken(size_bytes=-1), "manifest size_bytes must be a non-negative integer"),
        (broken(quantization="int4"), "unknown quantization 'int4'"),
        (
            broken(inputs=[{"name": "a", "datatype": "FLOAT", "shape": [1]}]),
            "manifest inputs: unknown datatype 'FLOAT'",
        ),
        (broken(outputs=[]), "manifest must list at least one input and one output"),
        (
            broken(name="../x"),
            "invalid model name '../x': it must match ^[a-z0-9][a-z0-9._-]{0,63}$ (lowercase letters, digits, '.', '_', '-'; at most 64 characters; no '..')",
        ),
        (broken(version=0), "invalid version 0: versions are positive integers"),
        (broken(opset=None), "manifest is malformed: KeyError: 'opset'"),
        (
            broken(inputs=[{"name": "a", "datatype": "FP32", "shape": [1]}] * 2),
            "manifest inputs: duplicate tensor names",
        ),
    ],
)
def test_malformed_manifests_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        Manifest.from_dict(doc)
    assert str(caught.value) == message
