"""The CLI against a deployed stack: `maas infer` signed with SigV4 or carrying a JWT, checked
by a loopback server in front of the real app; `--stack` resolved from CloudFormation on moto."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from typer.testing import CliRunner

from functions.api.asgi import create_server_app
from functions.core.repository import Repository
from functions.stores import open_store
from model_build.cli import app
from tests.conftest import (
    LiveServer,
    MotoServer,
    free_port,
    raw_outputs,
    runtime_for,
    settings_for,
)

KEY, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"
BEARER = "header.payload.signature"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"execute-api/aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def sigv4_ok(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    """Recompute the request's SigV4 signature with the known credentials, as API Gateway does."""
    found = _AUTH.match(headers.get("authorization", ""))
    if not found or found["key"] != KEY or headers.get("x-amz-security-token") != TOKEN:
        return False
    signed = {h: headers[h] for h in found["signed"].split(";")}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials(KEY, SECRET, TOKEN), "execute-api", found["region"])
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    return bool(auth.signature(string_to_sign, request) == found["sig"])


class Authorizer:
    """ASGI: the app behind an IAM (SigV4) or JWT check, like API Gateway's authorizers."""

    def __init__(self, inner: Any, mode: str) -> None:
        self.inner, self.mode = inner, mode
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode()
        url = f"http://{headers['host']}{scope['path']}" + (f"?{query}" if query else "")
        if self.mode == "iam":
            allowed = sigv4_ok(scope["method"], url, headers, body)
        else:
            allowed = headers.get("authorization") == f"Bearer {BEARER}"
        self.seen.append(f"{scope['method']} {scope['path']} {'ok' if allowed else 'refused'}")
        if not allowed:
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b'{"message":"Forbidden"}'})
            return
        replayed = False

        async def again() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.inner(scope, again, send)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # `--region` sets these for the process: recorded here so that they are put back after
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=["iam", "jwt"])
def api(
    request: pytest.FixtureRequest, served_store: Path, tmp_path: Path
) -> Iterator[tuple[str, Authorizer]]:
    runtime = runtime_for(settings_for(str(served_store), tmp_path / "cache"))
    guard = Authorizer(create_server_app(runtime), request.param)
    with LiveServer(app=guard) as server:
        yield server.url, guard


def infer(url: str, guard: Authorizer, *args: str) -> Any:
    auth = ["--auth", guard.mode] + (["--token", BEARER] if guard.mode == "jwt" else [])
    return CliRunner().invoke(app, ["--region", "us-east-1", "infer", *args, "--url", url, *auth])


@pytest.mark.parametrize("binary", [False, True])
def test_maas_infer_calls_the_api_signed(
    api: tuple[str, Authorizer],
    credentials: None,
    artifacts: dict[str, bytes],
    tmp_path: Path,
    binary: bool,
) -> None:
    url, guard = api
    pixels = np.random.default_rng(0).random((3, 64), dtype=np.float32)
    np.save(tmp_path / "x.npy", pixels)
    args = ["digits", str(tmp_path / "x.npy")] + (["--binary"] if binary else [])
    result = infer(url, guard, *args)
    assert result.exit_code == 0, (result.output, result.exception, guard.seen)
    doc = orjson.loads(result.stdout)
    expected = raw_outputs(artifacts["digits"], {"pixels": pixels})
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert doc["model_name"] == "digits" and doc["model_version"] == "1"
    assert outputs["label"]["data"] == expected["label"].ravel().tolist()
    np.testing.assert_allclose(
        np.asarray(outputs["probabilities"]["data"]).reshape(3, -1),
        expected["probabilities"],
        rtol=1e-6,
    )
    # the .npy's input name came from the model's metadata, asked with the same authorization
    assert guard.seen == ["GET /v2/models/digits ok", "POST /v2/models/digits/infer ok"]


def test_a_json_request_and_a_version(
    api: tuple[str, Authorizer], credentials: None, tmp_path: Path
) -> None:
    url, guard = api
    request = {
        "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]
    }
    (tmp_path / "r.json").write_bytes(orjson.dumps(request))
    result = infer(url, guard, "digits", str(tmp_path / "r.json"), "--version", "prod")
    assert result.exit_code == 0, (result.output, result.exception)
    assert orjson.loads(result.stdout)["model_version"] == "1"
    assert guard.seen == ["POST /v2/models/digits/versions/prod/infer ok"]


def test_a_bad_signature_or_token_is_refused(
    api: tuple[str, Authorizer], credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, guard = api
    (tmp_path / "r.json").write_bytes(b'{"inputs": []}')
    if guard.mode == "iam":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        result = infer(url, guard, "digits", str(tmp_path / "r.json"))
    else:
        result = CliRunner().invoke(
            app,
            ["infer", "digits", str(tmp_path / "r.json"), "--url", url, "--auth", "jwt",
             "--token", "forged"],
        )  # fmt: skip
    assert result.exit_code == 1
    assert str(result.exception).startswith(f"403 from {url}")
    assert guard.seen == ["POST /v2/models/digits/infer refused"]


@pytest.fixture
def stack(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A stack on moto's CloudFormation whose outputs name a models bucket on moto's S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto_server.url)
    bucket = f"maas-stack-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "ModelStore": {"Value": f"s3://{bucket}"},
            "ApiUrl": {"Value": "https://abc123.execute-api.us-east-1.amazonaws.com"},
        },
    }
    name = f"Maas{free_port()}"
    boto3.client("cloudformation").create_stack(
        StackName=name, TemplateBody=orjson.dumps(template).decode()
    )
    return name, f"s3://{bucket}"


def test_stack_outputs_name_the_store(
    stack: tuple[str, str], artifacts: dict[str, bytes], tmp_path: Path
) -> None:
    name, store = stack
    model = tmp_path / "digits.onnx"
    model.write_bytes(artifacts["digits"])
    runner = CliRunner()
    published = runner.invoke(app, ["publish", str(model), "--name", "digits", "--stack", name])
    assert published.exit_code == 0, (published.output, published.exception)
    assert published.stdout.strip() == "1"
    assert Repository(open_store(store)).versions("digits") == [1]
    aliased = runner.invoke(app, ["alias", "digits", "prod", "1", "--stack", name])
    assert aliased.stdout.strip() == "digits:prod -> 1"
    listing = runner.invoke(app, ["list", "--stack", name], env={"COLUMNS": "200"})
    assert f"models in {store}" in listing.stdout and "prod" in listing.stdout


def test_an_unknown_stack_is_a_clear_error(stack: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["list", "--stack", "NoSuchStack"])
    assert result.exit_code == 1
    assert "stack 'NoSuchStack'" in str(result.exception)
    assert "does not exist" in str(result.exception)


def test_jwt_without_a_token_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(b"{}")
    result = CliRunner().invoke(
        app,
        ["infer", "m", str(tmp_path / "r.json"), "--url", "http://127.0.0.1:9", "--auth", "jwt"],
    )
    assert "--auth jwt needs a token" in str(result.exception)
