"""`maas serve`'s inference middleware and the FastAPI routes give the same replies, good
requests and bad alike (both call `serve_inference`, through different transports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from functions.api.app import create_app
from functions.api.asgi import create_server_app
from functions.api.inference import match
from functions.core.codec import encode_binary
from tests.conftest import LiveServer, runtime_for, settings_for

X = np.arange(128, dtype=np.float32).reshape(2, 64) / 10
HEADER = orjson.dumps(
    {
        "inputs": [
            {
                "name": "pixels",
                "shape": [2, 64],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 512},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
)
JSON_BODY = orjson.dumps(
    {
        "id": "a",
        "inputs": [{"name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": X.tolist()}],
    }
)

CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v2/models/digits/infer", JSON_BODY, {}),
    ("/v2/models/digits/versions/prod/infer", JSON_BODY, {}),
    (
        "/v2/models/digits/infer",
        HEADER + encode_binary(X),
        {"inference-header-content-length": str(len(HEADER))},
    ),
    ("/v1/models/digits:predict", orjson.dumps({"instances": X.tolist()}), {}),
    (
        "/v1/models/multi/versions/1:predict",
        orjson.dumps({"instances": [{"features": [1, 2, 3, 4], "ids": 2}]}),
        {},
    ),
    ("/v2/models/digits/infer", b"{broken", {}),
    ("/v2/models/nope/infer", JSON_BODY, {}),
    ("/v2/models/digits/versions/9/infer", JSON_BODY, {}),
    (f"/v2/models/{'x' * 300}/infer", JSON_BODY, {}),
    ("/v2/models/digits/infer", JSON_BODY, {"inference-header-content-length": "abc"}),
    ("/v2/models/digits/infer", b"x" * 70_000, {}),
    ("/v1/models/digits:predict", b"[]", {}),
]


@pytest.fixture(scope="module")
def clients(
    served_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The FastAPI app alone, and the same app behind the middleware, each on a live server."""
    settings = settings_for(
        str(served_store), tmp_path_factory.mktemp("hot"), max_body_bytes=65_536
    )
    runtime = runtime_for(settings)
    app = create_app(runtime)
    with (
        LiveServer(app=app) as routed,
        LiveServer(app=create_server_app(runtime, lambda: app)) as hot,
    ):
        with httpx.Client(base_url=routed.url) as a, httpx.Client(base_url=hot.url) as b:
            yield a, b


@pytest.mark.parametrize(("path", "body", "headers"), CASES)
def test_same_reply_on_both_paths(
    clients: tuple[httpx.Client, httpx.Client], path: str, body: bytes, headers: dict[str, str]
) -> None:
    assert match("POST", path) is not None
    routed, hot = (client.post(path, content=body, headers=headers) for client in clients)
    assert hot.status_code == routed.status_code
    assert hot.headers["content-type"] == routed.headers["content-type"]
    assert hot.headers.get("inference-header-content-length") == routed.headers.get(
        "inference-header-content-length"
    )
    assert hot.content == routed.content


@pytest.mark.parametrize(
    ("method", "path", "hot"),
    [
        ("POST", "/v2/models/digits/infer", True),
        ("POST", "/v2/models/digits/versions/3/infer", True),
        ("POST", "/v1/models/digits:predict", True),
        ("GET", "/v2/models/digits/infer", False),
        ("POST", "/v2/models/digits/ready", False),
        ("POST", "/v2/models/..%2Fx/infer", False),
        ("POST", "/v2/repository/index", False),
    ],
)
def test_only_infer_and_predict_are_inference_routes(method: str, path: str, hot: bool) -> None:
    assert (match(method, path) is not None) == hot


def test_other_routes_still_reach_fastapi(clients: tuple[httpx.Client, httpx.Client]) -> None:
    _, hot = clients
    assert hot.get("/v2/models/digits").json()["name"] == "digits"
    assert hot.get("/docs").status_code == 200
    response: Any = hot.post("/v2/models/..%2Fx/infer", content=JSON_BODY)
    assert response.status_code == 400
