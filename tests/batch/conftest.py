"""A real S3 -> SQS notification pipeline on the moto server, and the production batch handler."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from functions.batch.handler import handle
from functions.core.repository import Repository
from functions.settings import Settings
from functions.stores import open_store
from model_build.examples import EXAMPLES, Trained
from tests import models
from tests.conftest import MotoServer, free_port, publish, runtime_for

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture(scope="session")
def text_model() -> Trained:
    return EXAMPLES["text"].train(True, None)


@pytest.fixture(scope="session")
def models_bucket(
    moto_server: MotoServer,
    artifacts: dict[str, bytes],
    text_model: Trained,
    transformer: Trained,
) -> str:
    """A models bucket on moto with digits (alias prod), multi, text and transformer published."""
    name = f"maas-models-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=name)
    repo = Repository(open_store(f"s3://{name}/store"))
    publish(repo, "digits", artifacts["digits"], alias="prod")
    publish(repo, "multi", artifacts["multi"])
    publish(repo, "text", text_model.onnx_bytes)
    publish(repo, "transformer", transformer.onnx_bytes)
    return name


@dataclass
class Rig:
    """One batch bucket wired to one queue, and the handler under test."""

    bucket: str
    queue_url: str
    queue_arn: str
    handler: Handler
    s3: Any
    sqs: Any
    logs: io.StringIO = field(default_factory=io.StringIO)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def upload(self, key: str, data: bytes) -> str:
        """Put an object under the batch bucket; return its ETag (moto notifies the queue)."""
        return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"].strip('"'))

    def messages(self, expected: int) -> list[dict[str, Any]]:
        """Receive at least `expected` S3 notifications from the queue (test events skipped)."""
        got: list[dict[str, Any]] = []
        for _ in range(20):
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            for message in response.get("Messages", []):
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                if b"s3:TestEvent" not in message["Body"].encode():
                    got.append(message)
            if len(got) >= expected:
                return got
        raise AssertionError(f"expected {expected} notifications, received {len(got)}")

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Messages as Lambda's SQS event source delivers them."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def deliver(self, expected: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Receive notifications and feed them to the handler as one SQS event."""
        event = self.sqs_event(self.messages(expected))
        from model_build.lambda_local import LocalContext

        return event, self.handler(event, LocalContext(timeout_seconds=900))

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def json(self, key: str) -> Any:
        return orjson.loads(self.read(key))

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def npz(self, key: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.read(key))) as data:
            return {name: data[name] for name in data.files}

    def jsonl(self, key: str) -> list[Any]:
        return [orjson.loads(line) for line in self.read(key).splitlines()]


def load_handler(
    monkeypatch: pytest.MonkeyPatch, logs: io.StringIO | None = None, **env: str
) -> Handler:
    """The production batch handler over a runtime built with these MAAS_*/AWS_* settings."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runtime = runtime_for(Settings(), logs)
    return lambda event, context: handle(runtime, event, context)


def make_rig(
    moto_server: MotoServer,
    models_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **env: str,
) -> Rig:
    s3 = boto3.client("s3", endpoint_url=moto_server.url)
    sqs = boto3.client("sqs", endpoint_url=moto_server.url)
    bucket = f"maas-batch-{free_port()}"
    queue_url = sqs.create_queue(QueueName=bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inputs/"}]}},
                }
            ]
        },
    )
    logs = io.StringIO()
    handler = load_handler(
        monkeypatch,
        logs,
        MAAS_STORE=f"s3://{models_bucket}/store",
        MAAS_CACHE_DIR=str(tmp_path / "cache"),
        **env,
    )
    return Rig(bucket, queue_url, arn, handler, s3, sqs, logs)


@pytest.fixture
def rig(
    moto_server: MotoServer, models_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    yield make_rig(moto_server, models_bucket, tmp_path, monkeypatch)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


__all__ = ["Rig", "load_handler", "make_rig", "models", "npy_bytes", "npz_bytes"]
