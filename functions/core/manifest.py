"""The manifest: the single source of truth about a published artifact."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Final

from .datatypes import DATATYPES
from .errors import ArtifactPathError, ManifestError
from .names import check_name, check_version

SCHEMA_VERSION: Final = 1
QUANTIZATIONS: Final = ("none", "fp16", "int8-dynamic", "int8-static")
# Custom-op libraries a graph may need registered (its operators in their domains): a session
# registers only the ones its manifest names (functions/core/sessions.py).
CUSTOM_OP_LIBRARIES: Final = {
    "onnxruntime-extensions": ("ai.onnx.contrib", "com.microsoft.extensions")
}
TARGETS: Final = ("cpu", "gpu")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
GRAPH_FILE: Final = "model.onnx"
# Names the version's folder holds beside the artifact's files.
_RESERVED: Final = frozenset({GRAPH_FILE, "manifest.json"})
_MAX_PATH: Final = 512


def check_artifact_path(path: object) -> str:
    """A data file's location relative to the graph's folder, or ArtifactPathError naming it.

    Refused: absolute paths, `..`, `.` and empty parts, backslashes, control characters, and the
    names the version's folder reserves. The store is not trusted to be well-formed: every load
    checks again what publishing checked.
    """
    if not isinstance(path, str) or not path:
        raise ArtifactPathError(f"artifact file location {path!r} is not a relative path")
    shown = repr(path)
    if len(path) > _MAX_PATH or any(ord(c) < 32 or c in "\\\x7f" for c in path):
        raise ArtifactPathError(
            f"artifact file location {shown} has a backslash, a control character or is too long"
        )
    pure = PurePosixPath(path)
    if path.startswith("/") or pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        raise ArtifactPathError(
            f"artifact file location {shown} is absolute: external data must lie beside the model"
        )
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ArtifactPathError(
            f"artifact file location {shown} leaves or does not name a file in the model's folder"
        )
    if path in _RESERVED:
        raise ArtifactPathError(f"artifact file location {shown} is a name the version reserves")
    return path


@dataclass(frozen=True)
class ArtifactFile:
    """One file of an artifact: its location beside the graph, size, sha256 and, for files
    published since it was recorded, BLAKE3 (what loads verify with: `core/digests.py`)."""

    path: str
    size_bytes: int
    sha256: str
    blake3: str | None = None

    @property
    def check(self) -> tuple[str, str]:
        """The algorithm a load verifies this file with, and the digest it must find."""
        return ("blake3", self.blake3) if self.blake3 else ("sha256", self.sha256)

    def to_dict(self) -> dict[str, Any]:
        """Serialize as the manifest lists it."""
        doc: dict[str, Any] = {"path": self.path, "size_bytes": self.size_bytes}
        doc["sha256"] = self.sha256
        if self.blake3 is not None:
            doc["blake3"] = self.blake3
        return doc


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
    # The external data files beside the graph (`sha256`, `size_bytes` describe the graph itself).
    data_files: tuple[ArtifactFile, ...] = ()
    graph_blake3: str | None = None
    custom_ops: tuple[str, ...] = ()  # custom-op libraries the graph needs (CUSTOM_OP_LIBRARIES)

    @property
    def files(self) -> tuple[ArtifactFile, ...]:
        """Every file of the artifact, the graph (`model.onnx`) first."""
        graph = ArtifactFile(GRAPH_FILE, self.size_bytes, self.sha256, self.graph_blake3)
        return (graph, *self.data_files)

    @property
    def total_bytes(self) -> int:
        """The artifact's size: the graph and its external data."""
        return self.size_bytes + sum(f.size_bytes for f in self.data_files)

    @property
    def artifact_id(self) -> str:
        """A digest naming the artifact's set of files (the graph's sha256 when it is alone)."""
        if not self.data_files:
            return self.sha256
        listing = "".join(f"{f.path}\0{f.size_bytes}\0{f.sha256}\n" for f in self.files)
        return hashlib.sha256(listing.encode()).hexdigest()

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
            "files": [f.to_dict() for f in self.files],
            "custom_ops": list(self.custom_ops),
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
        files = _files(doc.get("files"), sha256, size)
        custom_ops = tuple(str(each) for each in doc.get("custom_ops") or ())
        unknown = sorted(set(custom_ops) - set(CUSTOM_OP_LIBRARIES))
        if unknown:
            raise ManifestError(
                f"unknown custom-op library {unknown[0]!r}; known: {', '.join(CUSTOM_OP_LIBRARIES)}"
            )
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
            data_files=files[1:],
            graph_blake3=files[0].blake3,
            custom_ops=custom_ops,
        )


def _files(items: object, sha256: str, size: int) -> tuple[ArtifactFile, ...]:
    """Every file, the graph first (a manifest from before the list: the graph alone)."""
    if items is None:
        return (ArtifactFile(GRAPH_FILE, size, sha256),)
    if not isinstance(items, list) or not items:
        raise ManifestError("manifest files must be a non-empty list")
    files = []
    for item in items:
        if not isinstance(item, dict):
            raise ManifestError("manifest files: each entry is an object")
        sha = str(item["sha256"])
        fast = None if item.get("blake3") is None else str(item["blake3"])
        if not all(_SHA256.fullmatch(digest) for digest in (sha, fast or sha)):
            raise ManifestError("manifest files: digests must be 64 lowercase hex digits")
        size_bytes = _positive_int(item["size_bytes"], "size_bytes")
        files.append(ArtifactFile(str(item["path"]), size_bytes, sha, fast))
    graph = files[0]
    if (graph.path, graph.size_bytes, graph.sha256) != (GRAPH_FILE, size, sha256):
        raise ManifestError(f"manifest files must start with {GRAPH_FILE}, as sha256 describes it")
    for each in files[1:]:
        check_artifact_path(each.path)
    if len({f.path for f in files}) != len(files):
        raise ManifestError("manifest files: a location is listed twice")
    return tuple(files)


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
