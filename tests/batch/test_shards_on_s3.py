"""Large inputs on S3: the batch function plans shards and starts the state machine; its steps
(the shard function's three actions, driven here in the order the state machine runs them)
score the shards against moto's S3 and combine them, or record the failed ones."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from functions.batch import shard_handler
from functions.batch.processor import execution_name
from functions.settings import Settings
from model_build.lambda_local import LocalContext
from tests.batch.conftest import Rig, make_rig
from tests.batch.test_shards import csv_bytes, digits_rows
from tests.conftest import MotoServer, free_port, raw_outputs, runtime_for

PASS = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}'


@pytest.fixture
def sharded(
    moto_server: MotoServer, models_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Rig, Any, str]:
    """A batch rig whose function shards inputs over 20 KB into ~8 KB shards."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", moto_server.url)  # Step Functions on moto
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"maas-shards-{free_port()}",
        definition=PASS,
        roleArn="arn:aws:iam::123456789012:role/maas-shards",
    )["stateMachineArn"]
    rig = make_rig(
        moto_server,
        models_bucket,
        tmp_path,
        monkeypatch,
        MAAS_BATCH_STATE_MACHINE=arn,
        MAAS_BATCH_SHARD_ABOVE_BYTES="20000",
        MAAS_BATCH_SHARD_BYTES="8192",
    )
    return rig, sfn, arn


def step(event: dict[str, Any]) -> dict[str, Any]:
    """The shard function, as the state machine invokes it (a runtime from the environment)."""
    return shard_handler.handle(runtime_for(Settings()), event, LocalContext(timeout_seconds=900))


def jobs(sfn: Any, arn: str) -> list[dict[str, Any]]:
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
    return [orjson.loads(d["input"]) | {"name": d["name"]} for d in described]


def test_a_large_csv_is_scored_in_shards_equal_to_raw_onnxruntime(
    sharded: tuple[Rig, Any, str], artifacts: dict[str, bytes]
) -> None:
    rig, sfn, arn = sharded
    # Given a 1,200-row CSV (~170 KB) and a 5-row one, uploaded under inputs/
    rows = digits_rows(1200)
    big, small = "inputs/digits/prod/day/big.csv", "inputs/digits/prod/day/small.csv"
    etag = rig.upload(big, csv_bytes(rows))
    rig.upload(small, csv_bytes(rows[:5]))
    # When the batch function gets their events
    event, response = rig.deliver(2)
    assert response == {"batchItemFailures": []}, rig.logs.getvalue()[-3000:]
    # Then the small one is scored inline, and the big one starts one execution, named after
    # its key and ETag, with its plan and items written and nothing else yet
    assert len(rig.jsonl("outputs/digits/1/day/small.jsonl")) == 5
    (job,) = jobs(sfn, arn)
    assert job["name"] == execution_name(big, etag) and job["version"] == 1
    items = rig.json(job["items"])
    assert len(items) > 10
    assert rig.keys("outputs/digits/1/day/big") == []
    # A duplicate event while it runs starts nothing new
    assert rig.handler(event, LocalContext(timeout_seconds=900)) == {"batchItemFailures": []}
    assert len(jobs(sfn, arn)) == 1
    # When the state machine runs the shards (in any order) and the combining step
    job.pop("name")
    for item in reversed(items):
        assert step({"action": "shard", "job": job, "shard": item})["status"] == "ok"
    finished = step({"action": "finish", "job": job})
    assert finished == {"kind": "output", "key": "outputs/digits/1/day/big.jsonl", "rows": 1200}
    # Then the output equals raw onnxruntime row for row, with its summary and receipt
    expected = raw_outputs(artifacts["digits"], {"pixels": rows})
    lines = rig.jsonl("outputs/digits/1/day/big.jsonl")
    assert [line["label"] for line in lines] == expected["label"].tolist()
    np.testing.assert_allclose(
        [line["probabilities"] for line in lines], expected["probabilities"], atol=1e-6, rtol=0
    )
    summary = rig.json("outputs/digits/1/day/big.csv.summary.json")
    assert summary["rows"] == 1200 and summary["shards"] == len(items)
    assert summary["input_etag"] == etag
    receipt = rig.json("outputs/_receipts/digits/prod/day/big.csv.json")
    assert receipt["result"] == "outputs/digits/1/day/big.jsonl"
    # And a duplicate event after it is done is skipped by the receipt
    rig.handler(event, LocalContext(timeout_seconds=900))
    assert len(jobs(sfn, arn)) == 1


def test_a_poison_line_and_a_lost_shard_give_one_error_record(
    sharded: tuple[Rig, Any, str],
) -> None:
    rig, sfn, arn = sharded
    # Given 1,200 rows where line 901 has a field that is not a number
    text = csv_bytes(digits_rows(1200)).decode().split("\n")
    text[900] = text[900].replace(",", ",?", 1)
    key = "inputs/digits/1/poison.csv"
    rig.upload(key, "\n".join(text).encode())
    rig.deliver(1)
    (job,) = jobs(sfn, arn)
    job.pop("name")
    items = rig.json(job["items"])
    # When every shard runs but the second fails past its retries (the catch records it)
    results = []
    for item in items:
        if item["index"] == 1:
            error = {"Error": "States.Timeout", "Cause": "the shard ran out of time"}
            step({"action": "shard-failed", "job": job, "shard": item, "error": error})
        else:
            results.append(step({"action": "shard", "job": job, "shard": item}))
    assert [r["status"] for r in results].count("error") == 1
    finished = step({"action": "finish", "job": job})
    # Then one error record names both shards (the poison line within its shard, since a shard
    # before it has no line count), no output is written, the other parts are kept
    assert finished["kind"] == "error"
    record = rig.json("errors/digits/1/poison.csv.error.json")
    assert record["kind"] == "ShardsFailed"
    message = record["error"]
    assert message.startswith(f"2 of {len(items)} shards failed, so the output is withheld")
    assert "shard 2 of" in message and "States.Timeout: the shard ran out of time" in message
    assert "of the shard, input 'pixels': could not convert string to float: '?" in message
    assert rig.keys("outputs/digits/1/poison") == []
    parts = [k for k in rig.keys(job["items"].rsplit("/", 1)[0]) if k.endswith(".jsonl")]
    assert len(parts) == len(items) - 2
    assert rig.json("outputs/_receipts/digits/1/poison.csv.json")["result"] == record_key()


def record_key() -> str:
    return "errors/digits/1/poison.csv.error.json"


def test_an_input_replaced_before_the_combining_step_writes_nothing(
    sharded: tuple[Rig, Any, str],
) -> None:
    rig, sfn, arn = sharded
    key = "inputs/digits/1/replaced.csv"
    rig.upload(key, csv_bytes(digits_rows(600)))
    rig.deliver(1)
    (job,) = jobs(sfn, arn)
    job.pop("name")
    for item in rig.json(job["items"]):
        step({"action": "shard", "job": job, "shard": item})
    rig.upload(key, csv_bytes(digits_rows(3)))  # a newer object, with its own event
    assert step({"action": "finish", "job": job})["kind"] == "superseded"
    assert rig.keys("outputs/digits/1/replaced") == []
    assert rig.keys("errors/digits/1/replaced") == []


def test_a_compressed_npz_too_large_to_shard_is_scored_whole(
    sharded: tuple[Rig, Any, str],
) -> None:
    rig, sfn, arn = sharded
    rng = np.random.default_rng(5)
    features, ids = rng.standard_normal((3000, 4)).astype(np.float32), np.arange(3000)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=features, ids=ids)
    assert len(buffer.getvalue()) > 20000  # over the rig's shard threshold
    rig.upload("inputs/multi/1/packed.npz", buffer.getvalue())
    assert rig.deliver(1)[1] == {"batchItemFailures": []}
    assert jobs(sfn, arn) == []
    out = rig.npz("outputs/multi/1/packed.npz")
    np.testing.assert_array_equal(out["next_ids"], ids + 1)


def test_parquet_on_s3_inline_and_in_shards_equal_raw_onnxruntime(
    sharded: tuple[Rig, Any, str], artifacts: dict[str, bytes]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def parquet(rows: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        table = pa.table({f"p{i}": rows[:, i] for i in range(rows.shape[1])})
        pq.write_table(table, buffer, row_group_size=100)
        return buffer.getvalue()

    def predictions(key: str) -> tuple[list[int], np.ndarray]:
        table = pq.read_table(io.BytesIO(rig.read(key)))
        probabilities = np.asarray(table.column("probabilities").to_pylist(), dtype=np.float32)
        return table.column("label").to_pylist(), probabilities

    rig, sfn, arn = sharded
    # Given a 1,000-row Parquet file (~200 KB, over the 20 KB threshold) and a 10-row one
    rows = digits_rows(1000)
    big, small = "inputs/digits/prod/big.parquet", "inputs/digits/prod/small.parquet"
    rig.upload(big, parquet(rows))
    rig.upload(small, parquet(rows[:10]))
    event, response = rig.deliver(2)
    assert response == {"batchItemFailures": []}, rig.logs.getvalue()[-3000:]
    expected = raw_outputs(artifacts["digits"], {"pixels": rows})
    # Then the small one is scored inline into .parquet
    labels, _ = predictions("outputs/digits/1/small.parquet")
    assert labels == expected["label"][:10].tolist()
    # And the big one is planned by row groups; its shards and the combining step give one
    # .parquet output equal to raw onnxruntime
    (job,) = jobs(sfn, arn)
    job.pop("name")
    items = rig.json(job["items"])
    assert len(items) > 2 and all(item["rows"][0] % 100 == 0 for item in items)
    for item in items:
        assert step({"action": "shard", "job": job, "shard": item})["status"] == "ok"
    finished = step({"action": "finish", "job": job})
    assert finished == {"kind": "output", "key": "outputs/digits/1/big.parquet", "rows": 1000}
    labels, probabilities = predictions("outputs/digits/1/big.parquet")
    assert labels == expected["label"].tolist()
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=1e-6, rtol=0)
    assert rig.json("outputs/digits/1/big.parquet.summary.json")["rows"] == 1000
