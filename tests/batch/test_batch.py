"""Batch inference end to end: S3 upload -> moto's notification -> SQS -> the batch handler."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import orjson
import pytest

from model_build.examples import Trained
from model_build.examples.digits import TrainedModel
from tests.batch.conftest import Rig, make_rig, npy_bytes, npz_bytes
from tests.conftest import MotoServer, raw_outputs
from tests.proxy import Proxy


def raw(artifact: bytes, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return raw_outputs(artifact, feed)


def assert_exactly_one_result(rig: Rig, model: str, ref: str, path: str, version: int = 1) -> str:
    """Exactly one of: an output with its summary, or an error record. Returns which."""
    outputs = [
        k
        for k in rig.keys(f"outputs/{model}/{version}/")
        if k.startswith(f"outputs/{model}/{version}/{Path(path).with_suffix('')}")
    ]
    errors = rig.keys(f"errors/{model}/{ref}/{path}")
    summary = f"outputs/{model}/{version}/{path}.summary.json"
    has_output = summary in outputs and len(outputs) == 2
    assert has_output != bool(errors), (outputs, errors)
    return "output" if has_output else "error"


def test_every_format_equals_raw_onnxruntime_row_for_row(
    rig: Rig,
    digits: TrainedModel,
    artifacts: dict[str, bytes],
    text_model: Trained,
    transformer: Trained,
) -> None:
    # Given files of every format under inputs/
    x = digits.x_test[:50]
    rows = [",".join(str(v) for v in row) for row in x.tolist()]
    csv_data = ("\n".join([",".join(f"p{i}" for i in range(64)), *rows]) + "\n").encode()
    features = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    ids = np.arange(7, dtype=np.int64)
    texts = [str(t) for t in text_model.eval_inputs["text"][:20]]
    files = {
        "inputs/digits/prod/a.npy": npy_bytes(x),
        "inputs/digits/1/b.npz": npz_bytes(pixels=x),
        "inputs/digits/prod/c.jsonl": b"\n".join(orjson.dumps(r) for r in x.tolist()) + b"\n",
        "inputs/digits/prod/d.csv": csv_data,
        "inputs/multi/latest/e.npz": npz_bytes(features=features, ids=ids),
        "inputs/multi/latest/f.jsonl": b"\n".join(
            orjson.dumps({"features": f, "ids": int(i)})
            for f, i in zip(features.tolist(), ids, strict=True)
        ),
        "inputs/text/latest/g.jsonl": b"\n".join(orjson.dumps(t) for t in texts),
        "inputs/text/latest/h.csv": ("text\n" + "\n".join(f'"{t}"' for t in texts) + "\n").encode(),
        # the transformer: its tokenizer runs in the graph, the files hold plain sentences
        "inputs/transformer/latest/i.jsonl": b"\n".join(orjson.dumps(t) for t in texts),
        "inputs/transformer/latest/j.csv": (
            "text\n" + "\n".join(f'"{t}"' for t in texts) + "\n"
        ).encode(),
    }
    for key, data in files.items():
        rig.upload(key, data)
    # When the notifications are delivered to the handler
    _, response = rig.deliver(len(files))
    # Then nothing failed, and every output equals raw onnxruntime on the same rows
    assert response == {"batchItemFailures": []}
    expected = raw(artifacts["digits"], {"pixels": x})
    for name in ("a", "b"):
        out = rig.npz(f"outputs/digits/1/{name}.npz")
        assert np.array_equal(out["label"], expected["label"])
        assert np.array_equal(out["probabilities"], expected["probabilities"])
    for name in ("c", "d"):
        lines = rig.jsonl(f"outputs/digits/1/{name}.jsonl")
        assert [line["label"] for line in lines] == expected["label"].tolist()
        assert np.array_equal(
            np.asarray([line["probabilities"] for line in lines], np.float32),
            expected["probabilities"],
        )
    multi = raw(artifacts["multi"], {"features": features, "ids": ids})
    e = rig.npz("outputs/multi/1/e.npz")
    assert all(np.array_equal(e[k], multi[k]) for k in multi)
    f = rig.jsonl("outputs/multi/1/f.jsonl")
    assert [row["next_ids"] for row in f] == multi["next_ids"].tolist()
    text = raw(text_model.onnx_bytes, {"text": np.asarray(texts, dtype=object)})
    for name in ("g", "h"):
        assert [row["label"] for row in rig.jsonl(f"outputs/text/1/{name}.jsonl")] == text[
            "label"
        ].tolist()
    bert = raw(transformer.onnx_bytes, {"text": np.asarray(texts, dtype=object)})
    for name in ("i", "j"):
        rows = rig.jsonl(f"outputs/transformer/1/{name}.jsonl")
        assert [row["label"] for row in rows] == bert["label"].tolist()
        assert np.array_equal(
            np.asarray([row["probabilities"] for row in rows], np.float32), bert["probabilities"]
        )
    # And each has a summary naming the version, artifact and input ETag
    summary = rig.json("outputs/digits/1/a.npy.summary.json")
    assert summary["rows"] == 50 and summary["version"] == 1 and summary["requested"] == "prod"
    assert summary["input_etag"] == rig.s3.head_object(
        Bucket=rig.bucket, Key="inputs/digits/prod/a.npy"
    )["ETag"].strip('"')
    assert summary["output"] == "outputs/digits/1/a.npz"
    assert len(summary["artifact_sha256"]) == 64
    for key in files:
        model, ref, path = key.split("/", 3)[1:]
        assert assert_exactly_one_result(rig, model, ref, path) == "output"


def test_large_file_is_processed_in_bounded_chunks(
    moto_server: MotoServer,
    models_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    artifacts: dict[str, bytes],
) -> None:
    rig = make_rig(moto_server, models_bucket, tmp_path, monkeypatch, MAAS_BATCH_CHUNK_ROWS="1000")
    x = np.random.default_rng(0).uniform(0, 16, size=(20_500, 64)).astype(np.float32)
    rig.upload("inputs/digits/prod/big.npy", npy_bytes(x))
    _, response = rig.deliver(1)
    assert response == {"batchItemFailures": []}
    summary = rig.json("outputs/digits/1/big.npy.summary.json")
    assert (summary["rows"], summary["chunks"], summary["chunk_rows"]) == (20_500, 21, 1000)
    out = rig.npz("outputs/digits/1/big.npz")
    assert np.array_equal(out["label"], raw(artifacts["digits"], {"pixels": x})["label"])


@pytest.mark.parametrize(
    ("key", "data", "reason"),
    [
        (
            "inputs/digits/prod/poison.npy",
            b"\x93NUMPY garbage",
            "the .npy file is not a valid .npy array",
        ),
        ("inputs/digits/prod/empty.csv", b"", "the .csv file is empty"),
        (
            "inputs/digits/prod/floats64.npy",
            npy_bytes(np.zeros((2, 64))),
            "input 'pixels' has datatype FP64, expected FP32",
        ),
        (
            "inputs/digits/prod/narrow.npy",
            npy_bytes(np.zeros((2, 8), np.float32)),
            "input 'pixels' has shape [2, 8], expected [-1, 64] (dimension 1 must be 64)",
        ),
        (
            "inputs/digits/prod/names.npz",
            npz_bytes(image=np.zeros((2, 64), np.float32)),
            "the .npz arrays do not match the model's inputs: missing 'pixels'; unexpected 'image'",
        ),
        ("inputs/digits/prod/bad.jsonl", b"[1, 2]\n{not json\n", "line 2 is not valid JSON"),
        (
            "inputs/digits/prod/rows.csv",
            b"a,b\n1,2\n",
            "the .csv columns ['a', 'b'] do not fit the model's inputs",
        ),
        ("inputs/nope/prod/x.csv", b"a\n1\n", "model 'nope' is not published"),
        ("inputs/digits/7/x.csv", b"a\n1\n", "model 'digits' has no version 7"),
        (
            "inputs/digits/canary/x.csv",
            b"a\n1\n",
            "model 'digits' has no version or alias 'canary'",
        ),
        ("inputs/digits/prod/notes.txt", b"hello", "unsupported file type '.txt'"),
    ],
)
def test_permanent_faults_write_an_error_record_and_are_acknowledged(
    rig: Rig, key: str, data: bytes, reason: str
) -> None:
    rig.upload(key, data)
    _, response = rig.deliver(1)
    assert response == {"batchItemFailures": []}
    model, ref, path = key.split("/", 3)[1:]
    error_key = f"errors/{model}/{ref}/{path}.error.json"
    record = rig.json(error_key)
    assert reason in record["error"]
    assert record["input"] == key and record["retryable"] is False
    assert rig.keys("outputs/") == [f"outputs/_receipts/{model}/{ref}/{path}.json"]


def test_keys_outside_the_layout_get_an_error_record(rig: Rig) -> None:
    rig.upload("inputs/loose-file.csv", b"a\n1\n")
    _, response = rig.deliver(1)
    assert response == {"batchItemFailures": []}
    record = rig.json("errors/_unparsed/loose-file.csv.error.json")
    assert (
        record["error"]
        == "key 'inputs/loose-file.csv' is not inputs/{model}/{version-or-alias}/{path}"
    )


def test_a_duplicate_event_produces_one_output(rig: Rig, digits: TrainedModel) -> None:
    rig.upload("inputs/digits/prod/dup.npy", npy_bytes(digits.x_test[:5]))
    event, first = rig.deliver(1)
    modified = rig.s3.head_object(Bucket=rig.bucket, Key="outputs/digits/1/dup.npz")["LastModified"]
    from model_build.lambda_local import LocalContext

    second = rig.handler(event, LocalContext())  # SQS delivered the same message again
    assert first == second == {"batchItemFailures": []}
    assert (
        rig.s3.head_object(Bucket=rig.bucket, Key="outputs/digits/1/dup.npz")["LastModified"]
        == modified
    )
    assert rig.keys("outputs/digits/") == [
        "outputs/digits/1/dup.npy.summary.json",
        "outputs/digits/1/dup.npz",
    ]


def test_the_double_event_of_a_multipart_upload_produces_one_output(
    rig: Rig, digits: TrainedModel
) -> None:
    data = npy_bytes(np.tile(digits.x_test, (70, 1)))  # 6.4 MB: a 5 MiB part and the rest
    key = "inputs/digits/prod/multipart.npy"
    upload = rig.s3.create_multipart_upload(Bucket=rig.bucket, Key=key)
    cut = 5 * 1024 * 1024  # every part but the last must be at least 5 MiB
    parts = []
    for number, chunk in enumerate((data[:cut], data[cut:]), start=1):
        part = rig.s3.upload_part(
            Bucket=rig.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=chunk
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    rig.s3.complete_multipart_upload(
        Bucket=rig.bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    event, response = rig.deliver(2)
    assert (
        len(event["Records"]) == 2
    )  # moto sends Put and CompleteMultipartUpload; real S3 sends one
    assert response == {"batchItemFailures": []}
    assert rig.keys("outputs/digits/") == [
        "outputs/digits/1/multipart.npy.summary.json",
        "outputs/digits/1/multipart.npz",
    ]
    assert rig.json("outputs/digits/1/multipart.npy.summary.json")["rows"] == 360 * 70


def test_store_down_is_an_item_failure_then_recovers(
    moto_server: MotoServer,
    models_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    digits: TrainedModel,
) -> None:
    from model_build.lambda_local import LocalContext

    # Given the handler reaches S3 (models and batch bucket) through a proxy
    with Proxy(moto_server.port) as proxy:
        rig = make_rig(
            moto_server, models_bucket, tmp_path, monkeypatch, AWS_ENDPOINT_URL_S3=proxy.url
        )
        rig.upload("inputs/digits/prod/retry.npy", npy_bytes(digits.x_test[:3]))
        event = rig.sqs_event(rig.messages(1))
        # When S3 is unreachable, the message is reported as a batch item failure (SQS retries it)
        proxy.down()
        response = rig.handler(event, LocalContext())
        assert response == {
            "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
        }
        assert rig.keys("errors/") == []
        # And when S3 is back, the retry succeeds
        proxy.up()
        assert rig.handler(event, LocalContext()) == {"batchItemFailures": []}
        assert "outputs/digits/1/retry.npz" in rig.keys("outputs/")


def test_one_bad_record_never_fails_the_others(rig: Rig, digits: TrainedModel) -> None:
    rig.upload("inputs/digits/prod/good1.npy", npy_bytes(digits.x_test[:4]))
    rig.upload("inputs/digits/prod/bad.npy", b"not an array")
    rig.upload("inputs/digits/prod/good2.jsonl", orjson.dumps(digits.x_test[0].tolist()))
    event, response = rig.deliver(3)
    assert len(event["Records"]) == 3
    assert response == {"batchItemFailures": []}
    assert assert_exactly_one_result(rig, "digits", "prod", "good1.npy") == "output"
    assert assert_exactly_one_result(rig, "digits", "prod", "good2.jsonl") == "output"
    assert assert_exactly_one_result(rig, "digits", "prod", "bad.npy") == "error"


def test_files_over_the_size_limit_are_refused(
    moto_server: MotoServer, models_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig(
        moto_server, models_bucket, tmp_path, monkeypatch, MAAS_BATCH_MAX_INPUT_BYTES="1000"
    )
    rig.upload("inputs/digits/prod/huge.npy", npy_bytes(np.zeros((100, 64), np.float32)))
    rig.deliver(1)
    record = rig.json("errors/digits/prod/huge.npy.error.json")
    assert record["error"] == (
        "the file is 25728 bytes, over the batch limit of 1000 (MAAS_BATCH_MAX_INPUT_BYTES) for "
        "scoring in one invocation, and no shard state machine is configured "
        "(MAAS_BATCH_STATE_MACHINE)"
    )


def test_csv_values_that_are_not_numbers(rig: Rig) -> None:
    header = ",".join(f"p{i}" for i in range(64))
    rig.upload("inputs/digits/prod/text.csv", f"{header}\n{','.join(['x'] * 64)}\n".encode())
    rig.deliver(1)
    assert (
        "could not convert string to float: 'x'"
        in rig.json("errors/digits/prod/text.csv.error.json")["error"]
    )


def _csv(rows: list[list[float]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([f"p{i}" for i in range(64)])
    writer.writerows(rows)
    return buffer.getvalue().encode()


def test_an_input_deleted_after_its_event_is_recorded_not_retried(
    rig: Rig, digits: TrainedModel
) -> None:
    # Given an upload whose object is deleted before its notification is processed
    key = "inputs/digits/prod/gone.npy"
    rig.upload(key, npy_bytes(digits.x_test[:5]))
    messages = rig.messages(1)
    rig.s3.delete_object(Bucket=rig.bucket, Key=key)
    from model_build.lambda_local import LocalContext

    # When the handler gets the notification
    response = rig.handler(rig.sqs_event(messages), LocalContext())
    # Then it is acknowledged (no retry, so no DLQ and no alarm), with the reason recorded
    assert response == {"batchItemFailures": []}
    record = rig.json("errors/digits/prod/gone.npy.error.json")
    assert record["error"] == f"s3://{rig.bucket}/{key} no longer exists"
    assert (record["kind"], record["retryable"]) == ("ObjectGone", False)
    assert assert_exactly_one_result(rig, "digits", "prod", "gone.npy") == "error"


def test_each_object_gets_a_log_line_with_its_metrics(rig: Rig, digits: TrainedModel) -> None:
    rig.upload("inputs/digits/prod/seen.npy", npy_bytes(digits.x_test[:30]))
    rig.upload("inputs/nope/1/unknown.npy", npy_bytes(digits.x_test[:3]))
    _, response = rig.deliver(2)
    assert response == {"batchItemFailures": []}
    lines = [orjson.loads(line) for line in rig.logs.getvalue().splitlines()]
    objects = {line["key"]: line for line in lines if line["message"] == "batch object"}
    done = objects["inputs/digits/prod/seen.npy"]
    assert (done["outcome"], done["model"], done["version"], done["rows"]) == (
        "output",
        "digits",
        "1",
        30,
    )
    assert done["rows_per_second"] > 0 and done["BatchRows"] == [30.0]
    assert done["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "serverless-maas"
    metrics = {m["Name"] for m in done["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert metrics == {"BatchObjects", "BatchErrors", "BatchRows", "BatchRowsPerSecond"}
    failed = objects["inputs/nope/1/unknown.npy"]
    assert (failed["outcome"], failed["level"], failed["BatchErrors"]) == (
        "error",
        "WARNING",
        [1.0],
    )
    assert failed["error"] == "model 'nope' is not published"
    assert "98765" not in rig.logs.getvalue()
