"""`python -m bench.profile_hot`: where one warm MLP JSON request's time goes, piece by piece.

Each piece of the Lambda handler's hot path is timed alone (best of 5 x 3,000 calls), in one
process, next to the model's own `session.run`.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from bench.__main__ import CONTEXT, _event, bodies
from functions.api import hotpath
from functions.core import oip
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for


def main() -> None:
    """Print each piece's microseconds per call."""
    work = Path(tempfile.mkdtemp(prefix="maas-profile-"))
    model = build_mlp()
    Repository(LocalStore(work / "store")).publish(manifest_for(model, name="mlp")[0], model)
    os.environ.update(MAAS_STORE=str(work / "store"), MAAS_CACHE_DIR=str(work / "cache"))
    module = importlib.import_module("functions.api.handler")
    x = np.random.default_rng(1).standard_normal((1, 784)).astype(np.float32)
    body = bodies("x", x)[0]
    event = _event("/v2/models/mlp/infer", body, {"content-type": "application/json"}, False)
    runner = module.registry.runner("mlp", "latest")
    request = oip.parse_infer(body)
    outputs = runner.run(request.inputs)
    data = orjson.loads(body)["inputs"][0]["data"]
    pieces: dict[str, Callable[[], object]] = {
        "whole handler call": lambda: module.handler(event, CONTEXT),
        "hot path (event -> reply)": lambda: hotpath.from_event(module.plane, event, "/", 1 << 23),
        "  orjson.loads (16 KB body)": lambda: orjson.loads(body),
        "  np.asarray (784 floats)": lambda: np.asarray(data),
        "  parse_infer (both + checks)": lambda: oip.parse_infer(body),
        "  registry.runner (hot cache)": lambda: module.registry.runner("mlp", "latest"),
        "  runner.run": lambda: runner.run(request.inputs),
        "    session.run": lambda: runner.session.run(None, {"x": x}),
        "  encode_infer_response": lambda: oip.encode_infer_response(
            model_name="mlp", model_version="1", outputs=outputs, request=request
        ),
    }
    for label, call in pieces.items():
        for _ in range(200):
            call()
        best = min(timeit.repeat(call, number=3000, repeat=5)) / 3000
        print(f"{label:34s} {best * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
