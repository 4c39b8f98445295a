"""Read an ONNX file into a manifest: inputs and outputs from the graph, sha256, opset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from functions.core.datatypes import ONNX_TO_OIP
from functions.core.digests import bytes_digests, file_digests
from functions.core.errors import MaasError, ManifestError
from functions.core.manifest import (
    GRAPH_FILE,
    TARGETS,
    ArtifactFile,
    Manifest,
    TensorSpec,
    check_artifact_path,
)
from functions.core.names import check_name
from functions.core.sessions import custom_ops_in, make_session


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
    """Check that `artifact` (a single-file model) is loadable; return its manifest and warnings."""
    import onnx

    model = _parse(artifact)
    if locations := _locations(model):
        raise ArtifactError(
            f"the model keeps tensors in external data files ({', '.join(locations)}); "
            "publish it from its file (maas publish PATH) so they are found beside it"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ArtifactError(f"not a valid ONNX model: {exc}") from None
    return _describe(
        model, artifact, artifact, (), name, quantization, source, metrics, labels, target
    )


@dataclass(frozen=True)
class Artifact:
    """A model ready to publish: its manifest, the graph's bytes and its external data files."""

    manifest: Manifest
    warnings: list[str]
    graph: bytes
    data: dict[str, Path]  # location (as the graph names it) -> the file


def artifact_from_file(
    path: Path,
    *,
    name: str,
    labels: dict[str, str] | None = None,
    target: str = "cpu",
    external_data_from: int | None = None,
    workdir: Path | None = None,
) -> Artifact:
    """Read an ONNX file and the external data files it names, in any layout onnx writes.

    Every location must be a relative path to a regular file inside the model's folder (no
    `..`, no absolute path, no symbolic link on the way). `external_data_from`: move tensors of
    at least that many bytes of a single-file model into `model.onnx.data` (written in
    `workdir`), so the service memory-maps them.
    """
    import onnx

    check_name(name)
    try:
        graph = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
    model = _parse(graph)
    locations = _locations(model)
    if external_data_from is not None and not locations:
        if workdir is None:
            raise ArtifactError("converting to external data needs a working folder")
        converted = _to_external(model, external_data_from, workdir)
        return artifact_from_file(converted, name=name, labels=labels, target=target)
    data = {location: _data_file(path.parent, location) for location in locations}
    try:
        # From the path: the checker follows external data and models past protobuf's 2 GB.
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ArtifactError(f"not a valid ONNX model: {exc}") from None
    files = tuple(
        ArtifactFile(location, file.stat().st_size, digest["sha256"], digest["blake3"])
        for location, file in data.items()
        for digest in (file_digests(file),)
    )
    manifest, warnings = _describe(
        model, graph, str(path), files, name, "none", None, None, labels, target
    )
    return Artifact(manifest, warnings + fit_warnings(manifest), graph, data)


# What the deployed functions can hold (docs/deploy.md, "Which model fits which variant"): the
# memory and /tmp they have, less what the runtime keeps for itself.
DEFAULT_FIT_BYTES = (2048 - 256) * 2**20  # the API function's defaults
LARGEST_FIT_BYTES = (10240 - 256) * 2**20  # 10,240 MB of memory and /tmp, Lambda's most


def fit_warnings(manifest: Manifest) -> list[str]:
    """Where the model's size exceeds what the variant its target names holds."""
    size = manifest.total_bytes
    shown = f"{size / 1e9:.2f} GB"
    if manifest.target != "cpu" or size <= DEFAULT_FIT_BYTES:
        return []
    if size <= LARGEST_FIT_BYTES:
        return [
            f"the model is {shown}: the API function's defaults (2,048 MB of memory and of /tmp) "
            "cannot hold it; deploy with -c maas:apiMemoryMb and -c maas:apiEphemeralMb up to "
            "10240 (or maas:heavyCpu), else requests for it get a 503"
        ]
    return [
        f"the model is {shown}: no Lambda function can hold it (10,240 MB at most); "
        "publish it with --target gpu"
    ]


PROTOBUF_LIMIT = 2**31 - 1


def model_bytes(path: Path) -> bytes:
    """A model file as one serialized graph, its external data (checked as publishing checks
    it) read in: what the build pipeline compresses. Past protobuf's 2 GB there is no such
    thing, and the error says what to do instead."""
    import onnx

    try:
        graph = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
    locations = _locations(_parse(graph))
    if not locations:
        return graph
    total = len(graph) + sum(_data_file(path.parent, loc).stat().st_size for loc in locations)
    if total > PROTOBUF_LIMIT:
        raise ArtifactError(
            f"the model and its external data are {total / 1e9:.2f} GB, past the 2 GB a single "
            "ONNX graph can hold, so it cannot be compressed here; publish it as it is "
            "(maas publish PATH), or quantize it with onnxruntime's tools first"
        )
    try:
        return bytes(onnx.load(str(path)).SerializeToString())
    except Exception as exc:
        raise ArtifactError(f"cannot read the external data of {path}: {exc}") from None


def _parse(artifact: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(artifact)
    except Exception as exc:
        raise ArtifactError(f"not a valid ONNX model: {exc}") from None


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initializers, and those in node attributes and subgraphs."""
    yield from graph.initializer
    yield from (sparse.values for sparse in graph.sparse_initializer)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def _locations(model: Any) -> list[str]:
    """The external data locations the model names, each once, in order."""
    import onnx

    found: dict[str, None] = {}
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            found.setdefault(entries.get("location", ""), None)
    return list(found)


def _data_file(folder: Path, location: str) -> Path:
    """The regular file `location` names inside `folder`; ArtifactError naming it otherwise."""
    try:
        check_artifact_path(location)
    except ManifestError as exc:
        raise ArtifactError(f"external data: {exc}") from None
    here = folder
    for part in location.split("/"):
        here = here / part
        if here.is_symlink():
            raise ArtifactError(
                f"external data file {location!r} is (or lies under) a symbolic link: {here}; "
                "copy the file in its place"
            )
    if not here.is_file():
        raise ArtifactError(f"external data file {location!r} is missing beside the model: {here}")
    if not here.resolve().is_relative_to(folder.resolve()):
        raise ArtifactError(f"external data file {location!r} resolves outside the model's folder")
    return here


def _to_external(model: Any, threshold: int, workdir: Path) -> Path:
    """The model saved in `workdir` with tensors of `threshold` bytes or more in one data file."""
    import onnx

    target = workdir / GRAPH_FILE
    onnx.save_model(
        model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=GRAPH_FILE + ".data",
        size_threshold=threshold,
    )
    return target


def _describe(
    model: Any,
    graph: bytes,
    loadable: bytes | str,
    files: tuple[ArtifactFile, ...],
    name: str,
    quantization: str,
    source: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    labels: dict[str, str] | None,
    target: str,
) -> tuple[Manifest, list[str]]:
    """The manifest of a checked model: inputs and outputs as onnxruntime sees them."""
    check_name(name)
    if target not in TARGETS:
        raise ArtifactError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    custom_ops = custom_ops_in({o.domain for o in model.opset_import})
    try:
        session = make_session(loadable, 1, custom_ops=custom_ops)
    except Exception as exc:
        raise ArtifactError(f"onnxruntime cannot load the model: {exc}") from None
    warnings: list[str] = []
    inputs = _specs(session.get_inputs(), "input", warnings)
    if warnings:
        raise ArtifactError("; ".join(warnings) + ": only tensor inputs can be served")
    outputs = _specs(session.get_outputs(), "output", warnings)
    if not outputs:
        raise ArtifactError("the model has no tensor outputs: " + "; ".join(warnings))
    opset = default_opset(model)
    meta = {
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "onnx": version("onnx"),
        "onnxruntime": version("onnxruntime"),
        "ir_version": model.ir_version,
        "parent_version": None,
    }
    digests = bytes_digests(graph)
    manifest = Manifest(
        name=name,
        version=1,
        sha256=digests["sha256"],
        size_bytes=len(graph),
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quantization=quantization,
        target=target,
        source={**meta, **(source or {})},
        metrics=dict(metrics or {}),
        labels=dict(labels or {}),
        data_files=files,
        graph_blake3=digests["blake3"],
        custom_ops=custom_ops,
    )
    return manifest, [w + "; it is not served" for w in warnings]


def default_opset(model: Any) -> int:
    """The version of the default ONNX domain a model imports ("" or its alias "ai.onnx")."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def custom_ops_of(artifact: bytes) -> tuple[str, ...]:
    """The custom-op libraries a single-file model needs (from the domains it imports)."""
    return custom_ops_in({o.domain for o in _parse(artifact).opset_import})
