"""`maas serve`'s adaptive batching over real HTTP: concurrent requests for one model run as one
batch, each gets its own rows back (equal to an unbatched run, to onnxruntime's rounding), and a
bad request fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from functions.api import batching
from functions.api.asgi import InferenceMiddleware
from functions.core.errors import InvalidInput
from functions.core.runner import Runner
from model_build.examples.digits import TrainedModel
from tests.conftest import LiveServer, raw_outputs, runtime_for, settings_for

CLIENTS = 8


@pytest.fixture
def batched(served_store: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, InferenceMiddleware]]:
    """A server that batches: requests wait up to 1 s for others, a batch holds 8 rows."""
    settings = settings_for(
        str(served_store),
        tmp_path / "cache",
        serve_batching=True,
        serve_batch_max_rows=CLIENTS,
        serve_batch_delay_ms=1000,
    )
    with LiveServer(runtime_for(settings)) as server:
        yield server, server.server.config.app.app


def infer_body(name: str, x: np.ndarray, datatype: str = "FP32") -> bytes:
    tensor = {"name": name, "shape": list(x.shape), "datatype": datatype, "data": x.ravel()}
    return orjson.dumps({"inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY)


def concurrently(url: str, calls: list[tuple[str, bytes]]) -> list[httpx.Response]:
    """POST every call at once, one client each; the responses in the calls' order."""
    responses: list[httpx.Response | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def post(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            start.wait()
            responses[i] = client.post(calls[i][0], content=calls[i][1])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def warm(url: str, path: str, body: bytes) -> None:
    """Load the model (the first request loads it off the loop, unbatched)."""
    assert httpx.post(url + path, content=body, timeout=60).status_code == 200


def test_concurrent_requests_run_as_one_batch_and_get_their_own_rows(
    batched: tuple[LiveServer, InferenceMiddleware], digits: TrainedModel
) -> None:
    server, middleware = batched
    x = digits.x_test[: 2 * CLIENTS]
    warm(server.url, "/v2/models/digits/infer", infer_body("pixels", x[:1]))
    before = middleware.batcher.batches
    # Rows 1 and 2 per request (12 in all): the batch closes full at 8 rows, the rest wait
    # together for the next.
    parts = [x[i : i + 1 + i % 2] for i in range(CLIENTS)]
    responses = concurrently(
        server.url, [("/v2/models/digits/infer", infer_body("pixels", p)) for p in parts]
    )
    assert middleware.batcher.batches > before
    for part, response in zip(parts, responses, strict=True):
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        raw = raw_outputs(digits.onnx_bytes, {"pixels": part})
        assert outputs["label"]["shape"] == [len(part)]
        assert outputs["label"]["data"] == raw["label"].tolist()
        # onnxruntime's own kernels round differently for different batch sizes (the last bit
        # or two: 1.8e-7 here between a run of 16 rows and the same rows one by one).
        np.testing.assert_allclose(
            np.asarray(outputs["probabilities"]["data"], np.float32).reshape(len(part), 10),
            raw["probabilities"],
            rtol=1e-5,
            atol=1e-6,
        )


def test_a_bad_request_fails_alone(
    batched: tuple[LiveServer, InferenceMiddleware], digits: TrainedModel
) -> None:
    server, middleware = batched
    x = digits.x_test[:CLIENTS]
    warm(server.url, "/v2/models/digits/infer", infer_body("pixels", x[:1]))
    bad = infer_body("pixels", np.zeros((1, 63), np.float32))
    calls = [("/v2/models/digits/infer", infer_body("pixels", x[i : i + 1])) for i in range(4)]
    calls.insert(2, ("/v2/models/digits/infer", bad))
    calls.append(("/v1/models/digits:predict", orjson.dumps({"instances": x[4:6].tolist()})))
    responses = concurrently(server.url, calls)
    assert responses[2].status_code == 400
    assert "dimension 1 must be 64" in responses[2].json()["error"]
    good = [r for i, r in enumerate(responses) if i != 2]
    assert all(r.status_code == 200 for r in good), [r.text for r in good]
    raw = raw_outputs(digits.onnx_bytes, {"pixels": x[:6]})
    labels = [r.json()["outputs"][0]["data"] for r in good[:4]]
    assert labels == [[v] for v in raw["label"][:4].tolist()]
    predictions = good[4].json()["predictions"]
    assert [p["label"] for p in predictions] == raw["label"][4:6].tolist()


def test_a_failed_batch_runs_its_requests_one_by_one(
    batched: tuple[LiveServer, InferenceMiddleware],
    digits: TrainedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the combined run fails even so, each request is run alone and gets its own answer."""
    server, middleware = batched
    x = digits.x_test[:4]
    warm(server.url, "/v2/models/digits/infer", infer_body("pixels", x[:1]))
    real_run = Runner.run
    batched_rows: list[int] = []

    def refuse_batches(self: Runner, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        rows = len(inputs[0][1])
        if rows > 1:
            batched_rows.append(rows)
            raise InvalidInput("refused as a batch")
        return real_run(self, inputs, *args, **kwargs)

    monkeypatch.setattr(Runner, "run", refuse_batches)
    calls = [("/v2/models/digits/infer", infer_body("pixels", x[i : i + 1])) for i in range(4)]
    responses = concurrently(server.url, calls)
    assert batched_rows, "the requests never ran as a batch"
    raw = raw_outputs(digits.onnx_bytes, {"pixels": x})
    assert [r.json()["outputs"][0]["data"] for r in responses] == [[v] for v in raw["label"]]


def test_models_without_a_batch_axis_run_alone(
    batched: tuple[LiveServer, InferenceMiddleware],
) -> None:
    server, middleware = batched
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    body = infer_body("x", x)
    warm(server.url, "/v2/models/fixed/infer", body)
    before = middleware.batcher.batches
    responses = concurrently(server.url, [("/v2/models/fixed/infer", body)] * 4)
    assert [r.status_code for r in responses] == [200] * 4
    assert responses[0].json()["outputs"][0]["data"] == (x + 1).ravel().tolist()
    assert middleware.batcher.batches == before


def test_multi_input_models_batch_row_by_row(
    batched: tuple[LiveServer, InferenceMiddleware], artifacts: dict[str, bytes]
) -> None:
    server, middleware = batched

    def body(i: int) -> bytes:
        features = np.full((1, 4), i, np.float32)
        ids = np.array([i], np.int64)
        tensors = [
            {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": features.ravel()},
            {"name": "ids", "shape": [1], "datatype": "INT64", "data": ids},
        ]
        return orjson.dumps({"inputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)

    warm(server.url, "/v2/models/multi/infer", body(0))
    before = middleware.batcher.batches
    responses = concurrently(server.url, [("/v2/models/multi/infer", body(i)) for i in range(4)])
    assert middleware.batcher.batches > before
    for i, response in enumerate(responses):
        outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
        assert outputs == {"scaled": [2.0 * i] * 4, "next_ids": [i + 1], "total": [4.0 * i]}


def test_slow_runs_leave_the_loop_and_it_keeps_answering(
    served_store: Path,
    tmp_path: Path,
    digits: TrainedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model whose runs are slow runs on the worker thread: health answers meanwhile."""
    monkeypatch.setattr(batching, "SLOW_RUN_SECONDS", 0.0)
    settings = settings_for(str(served_store), tmp_path / "cache", serve_batching=False)
    started = threading.Event()
    release = threading.Event()
    real_run = Runner.run

    def held(self: Runner, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("maas-run"):
            started.set()
            release.wait(30)
        return real_run(self, *args, **kwargs)

    with LiveServer(runtime_for(settings)) as server:
        body = infer_body("pixels", digits.x_test[:1])
        warm(server.url, "/v2/models/digits/infer", body)  # loads the model
        warm(server.url, "/v2/models/digits/infer", body)  # on the loop: slow (threshold 0)
        monkeypatch.setattr(Runner, "run", held)
        result: list[httpx.Response] = []
        call: Callable[[], None] = lambda: result.append(  # noqa: E731
            httpx.post(server.url + "/v2/models/digits/infer", content=body, timeout=60)
        )
        thread = threading.Thread(target=call)
        thread.start()
        try:
            assert started.wait(30), "the run did not go to the worker thread"
            assert httpx.get(server.url + "/v2/health/live", timeout=5).status_code == 200
        finally:
            release.set()
            thread.join()
        assert result[0].status_code == 200


def test_when_a_leader_is_cancelled_its_followers_still_get_their_rows(
    digits: TrainedModel,
) -> None:
    """The first request of a batch runs it; if it goes away first, the others are run anyway."""
    from functions.core.dataplane import RunCall
    from functions.core.sessions import make_session
    from model_build.inspect_onnx import manifest_for

    manifest = manifest_for(digits.onnx_bytes, name="digits")[0]
    runner = Runner(manifest, make_session(digits.onnx_bytes, 1))
    batcher = batching.Batcher(enabled=True, max_rows=8, delay_seconds=10.0)
    x = digits.x_test[:3]

    async def scenario() -> list[Any]:
        calls = [RunCall(runner, [("pixels", x[i : i + 1])], None, None) for i in range(3)]
        leader = asyncio.ensure_future(batcher.run(calls[0]))
        await asyncio.sleep(0)  # the leader opens the batch and waits (10 s)
        followers = [asyncio.ensure_future(batcher.run(c)) for c in calls[1:]]
        await asyncio.sleep(0)
        leader.cancel()
        return await asyncio.wait_for(asyncio.gather(*followers), timeout=5)

    results = asyncio.run(scenario())
    raw = raw_outputs(digits.onnx_bytes, {"pixels": x})
    assert [r["label"].tolist() for r in results] == [[v] for v in raw["label"][1:]]
    assert batcher.batches == 1


@pytest.mark.parametrize(
    ("server", "setting", "spins"),
    [(False, None, True), (True, None, False), (True, True, True), (False, False, False)],
)
def test_server_sessions_do_not_spin_unless_asked(
    served_store: Path, tmp_path: Path, server: bool, setting: bool | None, spins: bool
) -> None:
    """`maas serve` and the GPU container: onnxruntime's threads sleep between runs (the event
    loop needs the core); the Lambda functions keep spinning; MAAS_ORT_SPINNING forces either."""
    from functions.runtime import build_runtime

    settings = settings_for(str(served_store), tmp_path / "cache", ort_spinning=setting)
    runtime = build_runtime(settings, server=server)
    session = runtime.registry.runner("digits", "latest").session
    options = session.get_session_options()  # type: ignore[attr-defined]
    try:
        entry = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: onnxruntime's default, which spins
        entry = "1"
    assert entry == ("1" if spins else "0")


def test_maas_serve_answers_inference_without_importing_fastapi(served_store: Path) -> None:
    """FastAPI (~0.2 s to import) is built on the first request that needs it: an inference
    cold start of `maas serve` goes without it; a health check then brings it in."""
    code = f"""
import asyncio, sys
from bench.guard import _asgi_call
from functions.api.asgi import create_server_app
from functions.runtime import build_runtime
from functions.settings import Settings
import orjson
runtime = build_runtime(Settings(store={str(served_store)!r}, cache_dir={str(served_store)!r} + "-cache"))
app = create_server_app(runtime)
body = orjson.dumps({{"inputs": [{{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}}]}})
call = _asgi_call(app, body, path="/v2/models/digits/infer")
print(asyncio.run(call()), sorted(m for m in ("fastapi", "starlette", "pydantic") if m in sys.modules))
live = _asgi_call(app, b"", path="/v2/health/live", method="GET")
print(asyncio.run(live()), "fastapi" in sys.modules)
"""
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    assert printed == ["200 []", "200 True"]  # (the lines starting "{" are the log's)
