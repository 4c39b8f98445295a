"""`python -m bench.guard`: the Lambda handler's per-request cost as a multiple of a raw run.

The MLP 784-512-512-10 at batch 1, JSON, through `functions.api.handler.handle` on a real API
Gateway event, against a bare `session.run` on the same input, interleaved block by block in
one process; the median of the blocks' ratios. `make test` runs it with a generous threshold
(tests/test_perf_guard.py), so a change that doubles the overhead fails while noise does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from functions.api.handler import handle
from functions.core.repository import Repository
from functions.runtime import build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import LocalContext, api_event


@dataclass(frozen=True)
class Ratio:
    """The handler's time per request over the raw run's: each block's, and their median."""

    median: float
    blocks: list[float]
    handler_us: float
    raw_us: float


def handler_ratio(*, blocks: int = 9, calls: int = 100) -> Ratio:
    """Measure the ratio (builds the MLP, a store and a runtime in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="maas-guard-") as work, open(os.devnull, "w") as sink:
        model = build_mlp()
        Repository(LocalStore(Path(work) / "store")).publish(
            manifest_for(model, name="mlp")[0], model
        )
        settings = Settings(store=str(Path(work) / "store"), cache_dir=Path(work) / "cache")
        runtime = build_runtime(settings, telemetry=Telemetry(stream=sink))
        x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
        body = orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1, 784], "datatype": "FP32", "data": x.ravel()}]},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        event: Any = api_event("/v2/models/mlp/infer", body)
        context = LocalContext(timeout_seconds=900)
        session = runtime.registry.runner("mlp", "latest").session
        assert handle(runtime, event, context)["statusCode"] == 200

        def handler() -> object:
            return handle(runtime, event, context)

        def raw() -> object:
            return session.run(None, {"x": x})

        for _ in range(3 * calls):
            handler()
            raw()
        ratios, handler_times, raw_times = [], [], []
        for _ in range(blocks):
            h = min(timeit.repeat(handler, number=calls, repeat=3)) / calls
            r = min(timeit.repeat(raw, number=calls, repeat=3)) / calls
            ratios.append(h / r)
            handler_times.append(h)
            raw_times.append(r)
        return Ratio(
            median=statistics.median(ratios),
            blocks=[round(v, 3) for v in ratios],
            handler_us=statistics.median(handler_times) * 1e6,
            raw_us=statistics.median(raw_times) * 1e6,
        )


def main() -> None:
    """Print the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.guard", description=__doc__)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    ratio = handler_ratio(blocks=args.blocks, calls=args.calls)
    print(
        f"Lambda handler, MLP batch 1, JSON: {ratio.median:.2f}x raw session.run "
        f"(median of {len(ratio.blocks)} interleaved blocks {ratio.blocks}; handler "
        f"{ratio.handler_us:.1f} us, raw {ratio.raw_us:.1f} us)"
    )


if __name__ == "__main__":
    main()
