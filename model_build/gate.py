"""The validation gate: judge a compressed artifact against its fp32 reference on held-out data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from functions.core.sessions import make_session, usable_cpus

from .examples.base import Arrays

LATENCY_BATCH = 32  # the batch whose ratio is `latency_ratio`; batch 1 is measured beside it
LATENCY_THREADS = 1  # one intra-op thread: a ratio that does not depend on the machine's cores


@dataclass(frozen=True)
class Thresholds:
    """What the gate demands; `force` publishes anyway and the manifest says so."""

    min_agreement: float = 0.99
    max_accuracy_drop: float = 0.01
    force: bool = False


@dataclass(frozen=True)
class Verdict:
    """The gate's measurements and decision."""

    metrics: dict[str, Any]
    reasons: list[str] = field(default_factory=list)  # thresholds missed; none: it passed


def _session(model: bytes, threads: int | None = None) -> Any:
    from .inspect_onnx import custom_ops_of

    return make_session(model, threads or usable_cpus(), custom_ops=custom_ops_of(model))


def predictions(output: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Top-1 per row: argmax of scores, or the values themselves for a label output."""
    if output.ndim >= 2 and output.shape[-1] > 1:
        return np.asarray(output.argmax(axis=-1))
    return output.reshape(len(output), -1)[:, 0] if output.ndim else output


def _agreement(reference: npt.NDArray[Any], candidate: npt.NDArray[Any]) -> float:
    if reference.dtype.kind == "f" and not (reference.ndim >= 2 and reference.shape[-1] > 1):
        # not a classifier output: rows agree when their values are close
        ref = reference.reshape(len(reference), -1)
        cand = candidate.reshape(len(candidate), -1)
        return float(np.mean(np.all(np.isclose(cand, ref, rtol=1e-2, atol=1e-3), axis=1)))
    return float(np.mean(predictions(reference) == predictions(candidate)))


def latency(model: bytes, inputs: Arrays, *, seconds: float, batch: int = LATENCY_BATCH) -> float:
    """Median seconds per `session.run` on the first `batch` rows, after a warm-up, on
    LATENCY_THREADS intra-op threads."""
    session = _session(model, LATENCY_THREADS)
    feed = {name: array[:batch] for name, array in inputs.items()}
    for _ in range(5):
        session.run(None, feed)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 10:
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def evaluate(
    *,
    reference: bytes,
    candidate: bytes,
    inputs: Arrays,
    labels: npt.NDArray[np.int64] | None,
    score_output: str,
    thresholds: Thresholds,
    latency_seconds: float = 1.0,
) -> Verdict:
    """Run both models on the held-out inputs; measure and decide."""
    ref_session, cand_session = _session(reference), _session(candidate)
    names = [o.name for o in ref_session.get_outputs()]
    ref_out = dict(zip(names, ref_session.run(None, inputs), strict=True))
    cand_out = dict(zip(names, cand_session.run(names, inputs), strict=True))
    ref_scores, cand_scores = ref_out[score_output], cand_out[score_output]
    metrics: dict[str, Any] = {
        "eval_rows": int(len(ref_scores)),
        "agreement": round(_agreement(ref_scores, cand_scores), 6),
        "max_abs_diff": _max_abs_diff(ref_scores, cand_scores),
        "size_bytes": len(candidate),
        "reference_size_bytes": len(reference),
        "size_ratio": round(len(candidate) / len(reference), 4),
    }
    reasons: list[str] = []
    if labels is not None:
        ref_acc = float(np.mean(predictions(ref_scores) == labels))
        acc = float(np.mean(predictions(cand_scores) == labels))
        metrics.update(
            accuracy=round(acc, 6),
            reference_accuracy=round(ref_acc, 6),
            accuracy_drop=round(ref_acc - acc, 6),
        )
        if ref_acc - acc > thresholds.max_accuracy_drop:
            reasons.append(
                f"accuracy dropped by {100 * (ref_acc - acc):.2f} points ({ref_acc:.4f} -> "
                f"{acc:.4f}), more than the allowed {100 * thresholds.max_accuracy_drop:.2f}"
            )
    if metrics["agreement"] < thresholds.min_agreement:
        reasons.append(
            f"top-1 agreement with the fp32 reference is {metrics['agreement']:.4f}, below the "
            f"required {thresholds.min_agreement:.4f}"
        )
    # Interleave the two timings twice so drift on a shared machine hits both alike.
    share = latency_seconds / 8
    for batch, key in ((LATENCY_BATCH, "latency_ratio"), (1, "latency_ratio_batch1")):
        ref_t: list[float] = []
        cand_t: list[float] = []
        for _ in range(2):
            ref_t.append(latency(reference, inputs, seconds=share, batch=batch))
            cand_t.append(latency(candidate, inputs, seconds=share, batch=batch))
        metrics[key] = round(float(np.median(cand_t) / np.median(ref_t)), 3)
    metrics["latency_batch"] = min(LATENCY_BATCH, metrics["eval_rows"])
    metrics["latency_threads"] = LATENCY_THREADS
    metrics["gate"] = {
        "passed": not reasons,
        "forced": bool(reasons) and thresholds.force,
        "min_agreement": thresholds.min_agreement,
        "max_accuracy_drop": thresholds.max_accuracy_drop,
        "reasons": reasons,
    }
    return Verdict(metrics=metrics, reasons=reasons)


def _max_abs_diff(reference: npt.NDArray[Any], candidate: npt.NDArray[Any]) -> float | None:
    if reference.dtype.kind not in "fiu":
        return None
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    return float(diff.max()) if diff.size else 0.0
