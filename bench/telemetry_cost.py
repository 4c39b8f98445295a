"""What the per-request log line and metrics cost the Lambda handler (part of `python -m bench`).

Measured side by side in one process, on the MLP at batch 1 (JSON): the request line alone
(`Telemetry.request`, best of several blocks), and the whole handler with the production
telemetry against the same runtime with a telemetry that writes no request line, interleaved
block by block (medians), next to a raw `session.run` for scale.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from functions.api.handler import handle
from functions.runtime import Runtime
from functions.telemetry import Telemetry
from model_build.lambda_local import LocalContext, api_event

CONTEXT = LocalContext(timeout_seconds=900)


class Untold(Telemetry):
    """Telemetry that writes no request lines (the baseline the cost is measured against)."""

    def request(self, **_: Any) -> None:
        """Nothing."""

    def access(self, **_: Any) -> None:
        """Nothing."""


def _best(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=3)) / number


def telemetry_cost(runtime: Runtime, body: bytes, *, seconds: float) -> dict[str, float]:
    """Microseconds the telemetry adds per MLP request, and the raw run's for scale."""
    silent = Runtime(
        settings=runtime.settings,
        telemetry=Untold(stream=runtime.telemetry.stream),
        registry=runtime.registry,
        plane=runtime.plane,
    )
    event: Any = api_event("/v2/models/mlp/infer", body)
    session = runtime.registry.runner("mlp", "latest").session
    feed = {"x": np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)}
    calls: dict[str, Callable[[], object]] = {
        "with": lambda: handle(runtime, event, CONTEXT),
        "without": lambda: handle(silent, event, CONTEXT),
        "raw": lambda: session.run(None, feed),
    }
    for call in calls.values():
        for _ in range(200):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(5, int(seconds / 0.1))):
        for name, call in calls.items():
            samples[name].append(_best(call, 100))
    line = request_line(runtime)
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    return {
        "request_line_us": round(_best(line, 2000) * 1e6, 2),
        "handler_with_us": round(median["with"], 2),
        "handler_without_us": round(median["without"], 2),
        "difference_us": round(median["with"] - median["without"], 2),
        "raw_run_us": round(median["raw"], 2),
        "limit_us": round(max(10.0, 0.05 * median["raw"]), 2),
    }


def request_line(runtime: Runtime) -> Callable[[], None]:
    """Writing one successful MLP request's line, as `serve_inference` does."""

    def line() -> None:
        runtime.telemetry.request(
            protocol="v2",
            name="mlp",
            ref="latest",
            version=1,
            status=200,
            seconds=1e-4,
            request_id="Hx2tQjPLIAMEV6f=",
        )

    return line
