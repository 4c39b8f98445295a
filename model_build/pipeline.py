"""The build pipeline: check, optimize, quantize, gate, then publish (or publish nothing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.core.manifest import Manifest
from functions.core.repository import Repository

from .compress import BuildError, check_mode, optimize, quantize
from .examples.base import Trained
from .gate import Thresholds, Verdict, evaluate
from .inspect_onnx import manifest_for

Step = Callable[[str], None]


class GateRefused(BuildError):
    """The compressed artifact missed a threshold; nothing was published."""


@dataclass(frozen=True)
class BuildResult:
    """What was built and published."""

    candidate: Manifest
    reference: Manifest | None  # the fp32 parent, for a derived artifact
    reference_published: bool
    verdict: Verdict


def build(
    trained: Trained,
    *,
    repo: Repository,
    name: str,
    mode: str,
    thresholds: Thresholds,
    alias: list[str] | None = None,
    labels: dict[str, str] | None = None,
    latency_seconds: float = 1.0,
    step: Step = lambda _: None,
    target: str = "cpu",
) -> BuildResult:
    """Compress `trained` per `mode`, judge it, and publish it (with its fp32 parent if new)."""
    check_mode(mode)
    step("checking the exported model")
    exported, _ = manifest_for(trained.onnx_bytes, name=name)  # onnx.checker + onnxruntime load
    if trained.score_output not in {o.name for o in exported.outputs}:
        raise BuildError(f"the model has no output '{trained.score_output}' to score")
    step("optimizing offline (onnxruntime, basic level)")
    reference = optimize(trained.onnx_bytes)
    step(f"quantizing: {mode}")
    candidate, details = quantize(reference, mode, trained.calibration)
    try:
        manifest_for(candidate, name=name)  # the result must itself be a valid, loadable model
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(
            f"the {mode} conversion produced a model that cannot be served: {exc}"
        ) from None
    step("validation gate: fp32 reference vs candidate on the held-out split")
    verdict = evaluate(
        # with no quantization, the gate proves the offline optimization changed nothing
        reference=trained.onnx_bytes if mode == "none" else reference,
        candidate=candidate,
        inputs=trained.eval_inputs,
        labels=trained.eval_labels,
        score_output=trained.score_output,
        thresholds=thresholds,
        latency_seconds=latency_seconds,
    )
    if verdict.reasons and not thresholds.force:
        raise GateRefused(
            "the validation gate refused to publish: "
            + "; ".join(verdict.reasons)
            + " (nothing was published; --force publishes anyway and records it)"
        )
    step("publishing")
    source = {**trained.source, "quantization": details} if details else dict(trained.source)
    parent: Manifest | None = None
    published_parent = False
    if mode != "none":
        parent = _find(repo, name, reference)
        if parent is None:
            ref_metrics = {
                k: verdict.metrics[k] for k in ("reference_accuracy",) if k in verdict.metrics
            }
            parent = _publish(
                repo, name, reference, "none", trained.source, _rename_acc(ref_metrics), labels
            )
            published_parent = True
        source["parent_version"] = parent.version
        source["parent_sha256"] = parent.sha256
    final = _publish(repo, name, candidate, mode, source, verdict.metrics, labels, target)
    for each in alias or []:
        repo.set_alias(name, each, final.version)
    return BuildResult(final, parent, published_parent, verdict)


def _rename_acc(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": metrics["reference_accuracy"]} if "reference_accuracy" in metrics else {}


def _find(repo: Repository, name: str, artifact: bytes) -> Manifest | None:
    """An already published version with exactly these bytes."""
    import hashlib

    digest = hashlib.sha256(artifact).hexdigest()
    for version in reversed(repo.versions(name)):
        manifest = repo.manifest(name, version)
        if manifest.sha256 == digest:
            return manifest
    return None


def _publish(
    repo: Repository,
    name: str,
    artifact: bytes,
    mode: str,
    source: dict[str, Any],
    metrics: dict[str, Any],
    labels: dict[str, str] | None,
    target: str = "cpu",
) -> Manifest:
    manifest, _ = manifest_for(
        artifact,
        name=name,
        quantization=mode,
        source=source,
        metrics=metrics,
        labels=labels,
        target=target,
    )
    return repo.publish(manifest, artifact)
