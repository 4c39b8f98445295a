"""`maas batch FILE --stack NAME`: upload to the deployed batch bucket, wait for this upload's
receipt, download the result; the batch function run on moto's S3 -> SQS notifications."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from model_build.cli import app
from model_build.lambda_local import LocalContext
from tests.batch.conftest import Rig
from tests.conftest import MotoServer, free_port, raw_outputs


@pytest.fixture
def stack(rig: Rig, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A stack on moto's CloudFormation whose BatchBucket output is the rig's bucket."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", moto_server.url)
    template = {
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"BatchBucket": {"Value": rig.bucket}},
    }
    name = f"Maas{free_port()}"
    boto3.client("cloudformation").create_stack(
        StackName=name, TemplateBody=orjson.dumps(template).decode()
    )
    return name


@pytest.fixture
def function(rig: Rig) -> Iterator[list[dict[str, object]]]:
    """The deployed batch function, standing in: each S3 notification fed to the handler."""
    stop, answers = threading.Event(), []

    def poll() -> None:
        while not stop.is_set():
            got = rig.sqs.receive_message(
                QueueUrl=rig.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            messages = [m for m in got if b"s3:TestEvent" not in m["Body"].encode()]
            for m in got:
                rig.sqs.delete_message(QueueUrl=rig.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if messages:
                answers.append(
                    rig.handler(rig.sqs_event(messages), LocalContext(timeout_seconds=900))
                )

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield answers
    stop.set()
    thread.join(timeout=10)


def test_a_file_scored_on_the_stack(
    stack: str, function: list[dict[str, object]], artifacts: dict[str, bytes], tmp_path: Path
) -> None:
    pixels = np.random.default_rng(3).random((50, 64), dtype=np.float32)
    np.save(tmp_path / "scans.npy", pixels)
    out = tmp_path / "result.npz"
    result = CliRunner().invoke(
        app,
        ["batch", str(tmp_path / "scans.npy"), "--model", "digits", "--version", "prod",
         "--stack", stack, "--out", str(out), "--wait", "60"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    summary = orjson.loads(result.stdout)
    assert summary["input"].endswith("/inputs/digits/prod/scans.npy")
    assert summary["rows"] == 50 and summary["output"] == str(out)
    with np.load(out) as got:
        expected = raw_outputs(artifacts["digits"], {"pixels": pixels})
        assert got["label"].tolist() == expected["label"].tolist()


def test_an_error_record_is_reported(
    stack: str, function: list[dict[str, object]], tmp_path: Path
) -> None:
    (tmp_path / "bad.csv").write_text("pixel0,pixel1\n1,2\n")
    result = CliRunner().invoke(
        app,
        ["batch", str(tmp_path / "bad.csv"), "--model", "digits", "--stack", stack, "--wait", "60"],
    )
    assert result.exit_code == 1
    assert str(result.exception).startswith("the batch function refused bad.csv: ")
