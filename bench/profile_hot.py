"""`python -m bench.profile_hot`: where one warm MLP JSON request's time goes, piece by piece.

Each piece of the Lambda handler's inference path is timed alone (best of 5 x 3,000 calls), in
one process, next to the model's own `session.run`.
"""

from __future__ import annotations

import io
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from bench.__main__ import CONTEXT, bodies
from bench.telemetry_cost import request_line
from functions.api.apigw import inference_request, response
from functions.api.handler import handle
from functions.api.inference import serve_inference
from functions.core import oip
from functions.core.repository import Repository
from functions.runtime import build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import api_event


def main() -> None:
    """Print each piece's microseconds per call."""
    work = Path(tempfile.mkdtemp(prefix="maas-profile-"))
    model = build_mlp()
    Repository(LocalStore(work / "store")).publish(manifest_for(model, name="mlp")[0], model)
    settings = Settings(store=str(work / "store"), cache_dir=work / "cache")
    runtime = build_runtime(settings, telemetry=Telemetry(stream=io.StringIO()))
    x = np.random.default_rng(1).standard_normal((1, 784)).astype(np.float32)
    body = bodies("x", x)[0]
    event = api_event("/v2/models/mlp/infer", body, headers={"content-type": "application/json"})
    request = inference_request(event, "/")  # type: ignore[arg-type]
    assert request is not None
    route, headers = request.route, request.headers
    runner = runtime.registry.runner("mlp", "latest")
    parsed = oip.parse_infer(body)
    outputs = runner.run(parsed.inputs)
    data = orjson.loads(body)["inputs"][0]["data"]
    reply = serve_inference(runtime, route, body, headers)
    pieces: dict[str, Callable[[], object]] = {
        "whole handler call": lambda: handle(runtime, event, CONTEXT),  # type: ignore[arg-type]
        "  event -> request": lambda: inference_request(event, "/"),  # type: ignore[arg-type]
        "  serve_inference": lambda: serve_inference(runtime, route, body, headers, budget=29.0),
        "    parse_infer (decode + checks)": lambda: oip.parse_infer(body),
        "      orjson.loads (16 KB body)": lambda: orjson.loads(body),
        "      np.asarray (784 floats)": lambda: np.asarray(data),
        "    registry.runner (cached)": lambda: runtime.registry.runner("mlp", "latest"),
        "    runner.run, with a time budget": lambda: runner.run(parsed.inputs, timeout=25.0),
        "    runner.run, without": lambda: runner.run(parsed.inputs),
        "      session.run": lambda: runner.session.run(None, {"x": x}),
        "    encode_infer_response": lambda: oip.encode_infer_response(
            model_name="mlp", model_version="1", outputs=outputs, request=parsed
        ),
        "    the request's log line": request_line(runtime),
        "  reply -> response": lambda: response(reply),
    }
    for label, call in pieces.items():
        for _ in range(200):
            call()
        best = min(timeit.repeat(call, number=3000, repeat=5)) / 3000
        print(f"{label:36s} {best * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
