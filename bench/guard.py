"""`python -m bench.guard`: the request path's cost as a multiple of a raw run, two entry points.

The MLP 784-512-512-10 at batch 1, JSON, against a bare `session.run` on the same input,
interleaved block by block in one process; the median of the blocks' ratios:
- the Lambda handler: `functions.api.handler.handle` on a real API Gateway event;
- `maas serve`: its ASGI app (concurrency bound, inference middleware, batcher) called with an
  HTTP scope on an event loop, as uvicorn calls it (uvicorn's own parsing and socket writes are
  not ours, and not measured here: `python -m bench.peers` measures the whole server).
`make test` runs both with generous thresholds (tests/test_perf_guard.py), so a change that
doubles the overhead fails while noise does not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from functions.api.asgi import create_server_app
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
    """The Lambda handler's ratio (builds the MLP, a store and a runtime in a temporary folder)."""
    return _ratio("handler", blocks=blocks, calls=calls)


def serve_ratio(*, blocks: int = 9, calls: int = 100) -> Ratio:
    """`maas serve`'s app's ratio, the same way."""
    return _ratio("serve", blocks=blocks, calls=calls)


def _ratio(entry: str, *, blocks: int, calls: int) -> Ratio:
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
        session = runtime.registry.runner("mlp", "latest").session
        if entry == "handler":
            event: Any = api_event("/v2/models/mlp/infer", body)
            context = LocalContext(timeout_seconds=900)
            assert handle(runtime, event, context)["statusCode"] == 200

            def block() -> float:
                start = time.perf_counter()
                for _ in range(calls):
                    handle(runtime, event, context)
                return time.perf_counter() - start

        else:
            loop = asyncio.new_event_loop()
            call = _asgi_call(create_server_app(runtime), body)
            assert loop.run_until_complete(call()) == 200

            async def many() -> float:
                start = time.perf_counter()
                for _ in range(calls):
                    await call()
                return time.perf_counter() - start

            def block() -> float:
                return loop.run_until_complete(many())

        def raw() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                session.run(None, {"x": x})
            return time.perf_counter() - start

        for _ in range(3):
            block()
            raw()
        ratios, entry_times, raw_times = [], [], []
        for _ in range(blocks):
            h = min(block() for _ in range(3)) / calls
            r = min(raw() for _ in range(3)) / calls
            ratios.append(h / r)
            entry_times.append(h)
            raw_times.append(r)
        if entry != "handler":
            loop.close()
        return Ratio(
            median=statistics.median(ratios),
            blocks=[round(v, 3) for v in ratios],
            handler_us=statistics.median(entry_times) * 1e6,
            raw_us=statistics.median(raw_times) * 1e6,
        )


def _asgi_call(
    app: Any, body: bytes, *, path: str = "/v2/models/mlp/infer", method: str = "POST"
) -> Callable[[], Awaitable[int]]:
    """One keep-alive HTTP request to `app` as uvicorn hands it over; returns the status."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    message = {"type": "http.request", "body": body, "more_body": False}

    async def call() -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return message

        async def send(event: dict[str, Any]) -> None:
            nonlocal status
            if event["type"] == "http.response.start":
                status = event["status"]

        await app(dict(scope), receive, send)
        return status

    return call


def main() -> None:
    """Print the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.guard", description=__doc__)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    for label, measure in (("Lambda handler", handler_ratio), ("maas serve's app", serve_ratio)):
        ratio = measure(blocks=args.blocks, calls=args.calls)
        print(
            f"{label}, MLP batch 1, JSON: {ratio.median:.2f}x raw session.run "
            f"(median of {len(ratio.blocks)} interleaved blocks {ratio.blocks}; it "
            f"{ratio.handler_us:.1f} us, raw {ratio.raw_us:.1f} us)"
        )


if __name__ == "__main__":
    main()
