"""The manifest: the single source of truth about a published artifact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Final

from .datatypes import DATATYPES
from .errors import ManifestError
from .names import check_name, check_version

SCHEMA_VERSION: Final = 1
QUANTIZATIONS: Final = ("none", "fp16", "int8-dynamic", "int8-static")
TARGETS: Final = ("cpu", "gpu")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TensorSpec:
    """OIP tensor metadata: a name, a datatype and a shape with -1 for dynamic axes."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Serialize as OIP tensor metadata."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Manifest:
    """Everything known about one published model version."""

    name: str
    version: int
    sha256: str
    size_bytes: int
    opset: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    created_at: str
    quantization: str = "none"
    target: str = "cpu"
    source: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def with_version(self, version: int) -> Manifest:
        """Return a copy numbered `version`."""
        return replace(self, version=check_version(version))

    def to_dict(self) -> dict[str, Any]:
        """Serialize to the JSON document stored beside the artifact."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "opset": self.opset,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "quantization": self.quantization,
            "target": self.target,
            "source": self.source,
            "metrics": self.metrics,
            "labels": self.labels,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, doc: object) -> Manifest:
        """Parse and validate a manifest document; raise ManifestError naming the problem."""
        if not isinstance(doc, dict):
            raise ManifestError("manifest must be a JSON object")
        try:
            return cls._parse(doc)
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest is malformed: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _parse(cls, doc: dict[str, Any]) -> Manifest:
        schema = doc.get("schema_version")
        if schema != SCHEMA_VERSION:
            raise ManifestError(f"unsupported manifest schema_version {schema!r}")
        try:
            name = check_name(str(doc["name"]))
            version = check_version(doc["version"])
        except Exception as exc:
            raise ManifestError(str(exc)) from None
        sha256 = str(doc["sha256"])
        if not _SHA256.fullmatch(sha256):
            raise ManifestError("manifest sha256 must be 64 lowercase hex digits")
        size = _positive_int(doc["size_bytes"], "size_bytes")
        quantization = doc.get("quantization", "none")
        if quantization not in QUANTIZATIONS:
            raise ManifestError(f"unknown quantization {quantization!r}")
        target = doc.get("target", "cpu")
        if target not in TARGETS:
            raise ManifestError(f"unknown target {target!r}")
        inputs = _tensors(doc["inputs"], "inputs")
        outputs = _tensors(doc["outputs"], "outputs")
        if not inputs or not outputs:
            raise ManifestError("manifest must list at least one input and one output")
        return cls(
            name=name,
            version=version,
            sha256=sha256,
            size_bytes=size,
            opset=_positive_int(doc["opset"], "opset"),
            inputs=inputs,
            outputs=outputs,
            created_at=str(doc["created_at"]),
            quantization=quantization,
            target=target,
            source=dict(doc.get("source") or {}),
            metrics=dict(doc.get("metrics") or {}),
            labels={str(k): str(v) for k, v in (doc.get("labels") or {}).items()},
        )


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"manifest {what} must be a non-negative integer")
    return value


def _tensors(items: object, what: str) -> tuple[TensorSpec, ...]:
    if not isinstance(items, list):
        raise ManifestError(f"manifest {what} must be a list")
    specs: list[TensorSpec] = []
    for item in items:
        datatype = item["datatype"]
        if datatype not in DATATYPES:
            raise ManifestError(f"manifest {what}: unknown datatype {datatype!r}")
        shape = tuple(int(d) for d in item["shape"])
        if any(d < -1 for d in shape):
            raise ManifestError(f"manifest {what}: shape dimensions are >= -1")
        specs.append(TensorSpec(name=str(item["name"]), datatype=datatype, shape=shape))
    if len({s.name for s in specs}) != len(specs):
        raise ManifestError(f"manifest {what}: duplicate tensor names")
    return tuple(specs)
