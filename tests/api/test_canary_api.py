"""A canary alias over the API: each answer names the version that gave it, the split holds
for real API Gateway events and `maas serve` alike, and X-Request-Id keeps a client's side."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import orjson

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.lambda_local import LocalContext, api_event
from tests.api.test_handler import handler_over
from tests.conftest import LiveServer, publish, runtime_for, settings_for

BODY = orjson.dumps(
    {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
)


def canary_store(tmp_path: Path, digits: bytes) -> Path:
    root = tmp_path / "store"
    repo = Repository(LocalStore(root))
    publish(repo, "digits", digits)
    publish(repo, "digits", digits)
    repo.set_alias("digits", "prod", 1, canary=(2, 0.10))
    return root


def test_the_handler_splits_2000_requests_by_weight(
    tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    root = canary_store(tmp_path, artifacts["digits"])
    handler = handler_over(runtime_for(settings_for(str(root), tmp_path / "cache")))
    rng = random.Random(11)
    answered = []
    for _ in range(2000):
        headers = {"x-request-id": f"{rng.getrandbits(64):016x}"}
        event = api_event("/v2/models/digits/versions/prod/infer", BODY, headers=headers)
        reply = handler(event, LocalContext())
        assert reply["statusCode"] == 200, reply["body"]
        answered.append(orjson.loads(reply["body"])["model_version"])
    share = answered.count("2") / len(answered)
    assert set(answered) == {"1", "2"} and abs(share - 0.10) <= 0.02, share


def test_maas_serve_keeps_a_request_id_on_its_side(
    tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    root = canary_store(tmp_path, artifacts["digits"])
    Repository(LocalStore(root)).set_alias("digits", "prod", 1, canary=(2, 0.5))
    runtime = runtime_for(settings_for(str(root), tmp_path / "cache"))
    url = "/v2/models/digits/versions/prod/infer"
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url) as client:
        sides = {}
        for i in range(40):
            rid = f"client-{i}"
            versions = {
                client.post(url, content=BODY, headers={"x-request-id": rid}).json()[
                    "model_version"
                ]
                for _ in range(3)
            }
            assert len(versions) == 1, (rid, versions)  # the same id, the same version
            sides[rid] = versions.pop()
        assert set(sides.values()) == {"1", "2"}
        predict = client.post(
            "/v1/models/digits/versions/prod:predict",
            content=orjson.dumps({"instances": [[0.0] * 64]}),
            headers={"x-request-id": "client-0"},
        )
        assert predict.status_code == 200
