"""Shared fixtures: real models, stores (local and the moto S3 server), a live HTTP server."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import httpx
import pytest
import uvicorn

from functions.api.asgi import create_server_app
from functions.core.repository import Repository
from functions.runtime import Runtime, build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.examples.base import Trained
from model_build.examples.digits import TrainedModel, train_digits
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import EVENTS
from model_build.loopback import MotoServer, free_port
from tests import models

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["EVENTS", "ROOT", "LiveServer", "MotoServer", "free_port", "publish", "runtime_for"]


def publish(repo: Repository, name: str, artifact: bytes, *, alias: str | None = None) -> int:
    """Publish `artifact` as the next version of `name` (optionally aliased); return it."""
    manifest, _ = manifest_for(artifact, name=name)
    version = repo.publish(manifest, artifact).version
    if alias:
        repo.set_alias(name, alias, version)
    return version


@pytest.fixture(scope="session")
def digits() -> TrainedModel:
    """The demo's digits classifier, trained once per session."""
    return train_digits()


@pytest.fixture(scope="session")
def transformer() -> Trained:
    """The transformer example (tokenizer in the graph), trained briefly once per session."""
    from model_build.examples import EXAMPLES

    return EXAMPLES["transformer"].train(True, None)


def raw_outputs(artifact: bytes, feed: dict[str, Any]) -> dict[str, Any]:
    """Raw onnxruntime's outputs by name, with the custom-op libraries the graph needs."""
    from functions.core.sessions import make_session
    from model_build.inspect_onnx import custom_ops_of

    session = make_session(artifact, 1, custom_ops=custom_ops_of(artifact))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed), strict=True))


@pytest.fixture(scope="session")
def artifacts(digits: TrainedModel) -> dict[str, bytes]:
    """Every test model's ONNX bytes by the name it is published under."""
    return {
        "digits": digits.onnx_bytes,
        "multi": models.multi_io(),
        "types": models.identity_all_types(),
        "fixed": models.fixed_shape(),
    }


@pytest.fixture(scope="session")
def served_store(
    tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, bytes], transformer: Trained
) -> Path:
    """A local store with every test model published (digits aliased `prod`), and the
    transformer (events/apigw-v2-infer-text.json asks it)."""
    root = tmp_path_factory.mktemp("store")
    repo = Repository(LocalStore(root))
    for name, artifact in artifacts.items():
        publish(repo, name, artifact, alias="prod" if name == "digits" else None)
    publish(repo, "transformer", transformer.onnx_bytes)
    return root


def settings_for(store: str, cache: Path, **extra: object) -> Settings:
    """Settings for a test store and cache."""
    return Settings(store=store, cache_dir=cache, **extra)  # type: ignore[arg-type]


def runtime_for(settings: Settings, stream: IO[str] | None = None) -> Runtime:
    """The production runtime over `settings`; its log lines go to `stream` (kept in memory)."""
    return build_runtime(settings, telemetry=Telemetry(stream=stream or io.StringIO()))


class LiveServer:
    """The serving app (or any ASGI app) under uvicorn in a background thread, on loopback."""

    def __init__(self, runtime: Runtime | None = None, *, app: Any = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if app is None:
            assert runtime is not None
            app = create_server_app(runtime)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live(served_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server over the served store, for the whole session."""
    settings = settings_for(
        str(served_store), tmp_path_factory.mktemp("cache"), max_body_bytes=1 << 20
    )
    with LiveServer(runtime_for(settings)) as server:
        yield server


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto S3 endpoint for the session; boto3 finds it through AWS_ENDPOINT_URL_S3."""
    server = MotoServer().start()
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL_S3=server.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_AWS_ENV = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture
def bucket(moto_server: MotoServer, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"maas-{slug}-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
