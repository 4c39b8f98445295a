"""The build pipeline at small settings: compression, the gate, lineage, and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.compress import BuildError
from model_build.examples import Trained
from model_build.gate import Thresholds
from model_build.pipeline import GateRefused, build


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(LocalStore(tmp_path / "store"))


def run(trained: Trained, repo: Repository, mode: str, **thresholds: object) -> object:
    return build(
        trained,
        repo=repo,
        name=trained.name,
        mode=mode,
        thresholds=Thresholds(**thresholds),  # type: ignore[arg-type]
        latency_seconds=0.1,
    )


def test_cnn_int8_static_is_small_agrees_and_records_its_parent(
    cnn: Trained, repo: Repository
) -> None:
    # When the CNN is built with calibrated static int8
    result = run(cnn, repo, "int8-static")
    candidate, reference = result.candidate, result.reference  # type: ignore[attr-defined]
    # Then the fp32 reference is published first, and the int8 artifact names it as parent
    assert (reference.version, reference.quantization) == (1, "none")
    assert (candidate.version, candidate.quantization) == (2, "int8-static")
    assert candidate.source["parent_version"] == 1
    assert candidate.source["parent_sha256"] == reference.sha256
    assert candidate.source["quantization"]["calibration_rows"] == 128
    # And it is at most 30% of the fp32 size and agrees on at least 99% of the held-out split
    assert candidate.size_bytes <= 0.30 * reference.size_bytes
    metrics = candidate.metrics
    assert metrics["agreement"] >= 0.99
    assert metrics["eval_rows"] == 360
    assert metrics["gate"] == {
        "passed": True,
        "forced": False,
        "min_agreement": 0.99,
        "max_accuracy_drop": 0.01,
        "reasons": [],
    }
    assert set(metrics) >= {
        "accuracy",
        "reference_accuracy",
        "max_abs_diff",
        "size_ratio",
        "latency_ratio",
    }
    # And the published bytes are what the manifest says, and they serve
    session = ort.InferenceSession(repo.store.read("models/cnn/2/model.onnx"))
    logits = session.run(None, {"image": cnn.eval_inputs["image"][:4]})[0]
    assert logits.shape == (4, 10)


def test_a_rebuild_reuses_the_published_parent(cnn: Trained, repo: Repository) -> None:
    run(cnn, repo, "int8-static")
    again = run(cnn, repo, "int8-static")
    assert again.reference_published is False  # type: ignore[attr-defined]
    assert again.candidate.source["parent_version"] == 1  # type: ignore[attr-defined]
    assert repo.versions("cnn") == [1, 2, 3]


def test_fp16_halves_the_cnn_and_keeps_fp32_io(cnn: Trained, repo: Repository) -> None:
    result = run(cnn, repo, "fp16")
    candidate = result.candidate  # type: ignore[attr-defined]
    assert candidate.inputs[0].datatype == "FP32"
    assert candidate.outputs[0].datatype == "FP32"
    assert 0.45 < candidate.metrics["size_ratio"] < 0.55


@pytest.mark.parametrize(
    ("example", "mode"), [("text", "none"), ("tabular", "none"), ("tabular", "int8-static")]
)
def test_other_examples_build(
    example: str, mode: str, repo: Repository, request: pytest.FixtureRequest
) -> None:
    trained: Trained = request.getfixturevalue(example)
    result = run(trained, repo, mode)
    manifest = result.candidate  # type: ignore[attr-defined]
    assert manifest.quantization == mode
    assert manifest.metrics["accuracy"] >= 0.9
    assert set(manifest.to_dict()) >= {"sha256", "size_bytes", "metrics", "source"}


def test_text_model_takes_strings(text: Trained, repo: Repository) -> None:
    run(text, repo, "none")
    session = ort.InferenceSession(repo.store.read("models/text/1/model.onnx"))
    labels = session.run(
        ["label"],
        {"text": np.array(["my parcel never arrived", "I was charged twice"], dtype=object)},
    )[0]
    assert labels.tolist() == ["delivery", "billing"]


@pytest.mark.parametrize(
    ("example", "mode", "message"),
    [
        (
            "text",
            "int8-static",
            "nothing to quantize: the model has no Conv, ConvTranspose, MatMul or Gemm",
        ),
        ("tabular", "fp16", "the fp16 conversion produced a model that cannot be served"),
        (
            "cnn",
            "int4",
            "unknown quantization 'int4'; choose one of none, fp16, int8-dynamic, int8-static",
        ),
    ],
)
def test_unsupported_compression_is_a_clear_error_and_publishes_nothing(
    example: str, mode: str, message: str, repo: Repository, request: pytest.FixtureRequest
) -> None:
    trained: Trained = request.getfixturevalue(example)
    with pytest.raises(BuildError) as caught:
        run(trained, repo, mode)
    assert str(caught.value).startswith(message)
    assert repo.models() == []


def miscalibrated(cnn: Trained) -> Trained:
    """The CNN with calibration images dimmed to 10%: a real preprocessing mistake."""
    from dataclasses import replace

    return replace(cnn, calibration={"image": cnn.calibration["image"] * 0.1})


def test_gate_failure_publishes_nothing(cnn: Trained, repo: Repository) -> None:
    with pytest.raises(GateRefused) as caught:
        run(miscalibrated(cnn), repo, "int8-static")
    message = str(caught.value)
    assert message.startswith("the validation gate refused to publish: accuracy dropped by ")
    assert "top-1 agreement with the fp32 reference is " in message
    assert message.endswith("(nothing was published; --force publishes anyway and records it)")
    assert repo.models() == []


def test_force_publishes_and_the_manifest_records_it(cnn: Trained, repo: Repository) -> None:
    result = run(miscalibrated(cnn), repo, "int8-static", force=True)
    gate = result.candidate.metrics["gate"]  # type: ignore[attr-defined]
    assert gate["passed"] is False and gate["forced"] is True
    assert len(gate["reasons"]) == 2


def test_thresholds_are_settings(cnn: Trained, repo: Repository) -> None:
    with pytest.raises(GateRefused, match="below the required 1.0100"):
        run(cnn, repo, "fp16", min_agreement=1.01)


def test_every_published_manifest_carries_the_contract_fields(
    cnn: Trained, text: Trained, repo: Repository, tmp_path: Path
) -> None:
    # Given manifests from every publishing path: a build with a parent, a plain build, `maas publish`
    run(cnn, repo, "int8-static")
    run(text, repo, "none")
    from tests.conftest import publish
    from tests.models import multi_io

    publish(repo, "plain", multi_io())
    # Then each carries sha256, size, metrics, source and its parent (None for a root artifact)
    for name in repo.models():
        for version in repo.versions(name):
            doc = repo.manifest(name, version).to_dict()
            assert len(doc["sha256"]) == 64 and doc["size_bytes"] > 0
            assert isinstance(doc["metrics"], dict) and isinstance(doc["source"], dict)
            assert "parent_version" in doc["source"]
    assert repo.manifest("cnn", 2).source["parent_version"] == 1
    assert repo.manifest("cnn", 1).source["parent_version"] is None
