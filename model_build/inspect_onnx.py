"""Read an ONNX file into a manifest: inputs and outputs from the graph, sha256, opset."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from functions.core.datatypes import ONNX_TO_OIP
from functions.core.errors import MaasError
from functions.core.manifest import TARGETS, Manifest, TensorSpec
from functions.core.names import check_name


class ArtifactError(MaasError):
    """An ONNX file that cannot be published."""


def _specs(args: list[Any], what: str, skipped: list[str]) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        datatype = ONNX_TO_OIP.get(arg.type)
        if datatype is None:
            skipped.append(f"{what} '{arg.name}' has type {arg.type}, which is not a tensor")
            continue
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
        specs.append(TensorSpec(name=arg.name, datatype=datatype, shape=shape))
    return tuple(specs)


def manifest_for(
    artifact: bytes,
    *,
    name: str,
    quantization: str = "none",
    source: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    target: str = "cpu",
) -> tuple[Manifest, list[str]]:
    """Check that `artifact` is a loadable ONNX model; return its manifest and any warnings."""
    import onnx
    import onnxruntime as ort

    check_name(name)
    if target not in TARGETS:
        raise ArtifactError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    try:
        model = onnx.load_model_from_string(artifact)
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ArtifactError(f"not a valid ONNX model: {exc}") from None
    external = [
        t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ArtifactError(
            f"the model keeps {len(external)} tensors in external data files; save it as a single "
            "file (onnx.save_model(model, path, save_as_external_data=False)) to publish it"
        )
    try:
        session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ArtifactError(f"onnxruntime cannot load the model: {exc}") from None
    warnings: list[str] = []
    inputs = _specs(session.get_inputs(), "input", warnings)
    if warnings:
        raise ArtifactError("; ".join(warnings) + ": only tensor inputs can be served")
    outputs = _specs(session.get_outputs(), "output", warnings)
    if not outputs:
        raise ArtifactError("the model has no tensor outputs: " + "; ".join(warnings))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    meta = {
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "onnx": version("onnx"),
        "onnxruntime": version("onnxruntime"),
        "ir_version": model.ir_version,
        "parent_version": None,
    }
    manifest = Manifest(
        name=name,
        version=1,
        sha256=hashlib.sha256(artifact).hexdigest(),
        size_bytes=len(artifact),
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quantization=quantization,
        target=target,
        source={**meta, **(source or {})},
        metrics=dict(metrics or {}),
        labels=dict(labels or {}),
    )
    return manifest, [w + "; it is not served" for w in warnings]
