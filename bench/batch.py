"""`python -m bench.batch`: batch throughput (rows/s) against raw onnxruntime, in one run.

A 100,000-row .npy file for the MLP (784-512-512-10). Raw onnxruntime runs the same array
in the same chunks in memory; the batch job reads the file, runs it chunk by chunk through
the runner and writes the .npz; the handler path adds S3: moto's server on loopback for the
read and the upload, an SQS-shaped event, the summary and the receipt.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from functions.batch.job import run_job
from functions.core.repository import Repository
from functions.core.sessions import make_session, usable_cpus
from functions.runtime import build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import LocalContext
from model_build.loopback import MotoServer

ROOT = Path(__file__).resolve().parent.parent


def _raw(model: bytes, x: np.ndarray, chunk_rows: int) -> float:
    session = make_session(model, usable_cpus())
    session.run(None, {"x": x[:chunk_rows]})
    start = time.perf_counter()
    for i in range(0, len(x), chunk_rows):
        session.run(None, {"x": x[i : i + chunk_rows]})
    return time.perf_counter() - start


def run(rows: int, chunk_rows: int, with_s3: bool) -> list[dict[str, Any]]:
    """Measure raw, the local batch job, and (optionally) the handler through S3."""
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="maas-bench-batch-"))
    model = build_mlp()
    repo = Repository(LocalStore(work / "store"))
    repo.publish(manifest_for(model, name="mlp")[0], model)
    x = np.random.default_rng(0).standard_normal((rows, 784)).astype(np.float32)
    data = io.BytesIO()
    np.save(data, x)
    (work / "in.npy").write_bytes(data.getvalue())
    console.print(
        f"{rows} rows x 784 FP32 = {len(data.getvalue()) / 1e6:.0f} MB; chunks of {chunk_rows}"
    )
    results: dict[str, float] = {}
    results["raw onnxruntime (in memory)"] = _raw(model, x, chunk_rows)
    settings = Settings(
        store=str(work / "store"), cache_dir=work / "cache", batch_chunk_rows=chunk_rows
    )
    runner = build_runtime(settings, telemetry=_quiet()).registry.runner("mlp", "1")
    with (work / "in.npy").open("rb") as stream:
        stats = run_job(
            stream, suffix=".npy", runner=runner, out=work / "out.npz", chunk_rows=chunk_rows
        )
    results["batch job (local file -> .npz)"] = stats.seconds
    if with_s3:
        results.update(_through_s3(work, data.getvalue(), chunk_rows, console))
    base = results["raw onnxruntime (in memory)"]
    rows_out = [
        {
            "path": k,
            "seconds": round(v, 3),
            "rows_per_s": round(rows / v),
            "ratio_to_raw": round(base / v, 3),
        }
        for k, v in results.items()
    ]
    table = Table(
        title=f"batch throughput, MLP 784-512-512-10, {rows} rows ({usable_cpus()} threads)"
    )
    for column in ("path", "seconds", "rows/s", "throughput vs raw"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in rows_out:
        table.add_row(
            str(r["path"]),
            f"{r['seconds']:.2f}",
            f"{r['rows_per_s']:,}",
            f"{r['ratio_to_raw']:.2f}x",
        )
    console.print(table)
    return rows_out


def _through_s3(work: Path, payload: bytes, chunk_rows: int, console: Console) -> dict[str, float]:
    import boto3

    moto = MotoServer().start()
    assert moto.proc is not None
    try:
        os.environ.update(
            moto.environment(),
            MAAS_STORE=str(work / "store"),
            MAAS_CACHE_DIR=str(work / "cache2"),
            MAAS_BATCH_CHUNK_ROWS=str(chunk_rows),
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench-batch")
        from functions.batch.handler import handle

        runtime = build_runtime(Settings(), telemetry=_quiet())

        def handler(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
            return handle(runtime, event, context)

        # A warm-up invocation on a small file loads the model, as a warm Lambda would have.
        small = io.BytesIO()
        np.save(small, np.zeros((4, 784), np.float32))
        handler(_event(s3, "inputs/mlp/1/warm.npy", small.getvalue()), LocalContext())
        event = _event(s3, "inputs/mlp/1/in.npy", payload)
        moto_cpu = _cpu_seconds(moto.proc.pid)
        start = time.perf_counter()
        response = handler(event, LocalContext(timeout_seconds=900))
        seconds = time.perf_counter() - start
        moto_cpu = _cpu_seconds(moto.proc.pid) - moto_cpu
        assert response == {"batchItemFailures": []}, response
        key = "outputs/mlp/1/in.npy.summary.json"
        summary = orjson.loads(s3.get_object(Bucket="bench-batch", Key=key)["Body"].read())
        console.print(
            f"handler: job {summary['duration_seconds']} s of {seconds:.2f} s (the rest: the "
            f"conditional GET's first byte, output upload, summary, receipt); moto's server used "
            f"{moto_cpu:.2f} s of CPU meanwhile, on the same {usable_cpus()} cores as onnxruntime"
        )
        return {
            "batch handler via SQS event, S3 (moto) in and out": seconds,
            "  of which the job (S3 read + run + write)": summary["duration_seconds"],
        }
    finally:
        moto.stop()


def _quiet() -> Telemetry:
    """Telemetry whose lines are kept in memory (the benchmark prints its own tables)."""
    return Telemetry(stream=io.StringIO())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _event(s3: Any, key: str, payload: bytes) -> dict[str, Any]:
    """Upload `payload` at `key` and return the SQS event S3 would cause."""
    etag = s3.put_object(Bucket="bench-batch", Key=key, Body=payload)["ETag"].strip('"')
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "awsRegion": "us-east-1",
        "s3": {
            "bucket": {"name": "bench-batch"},
            "object": {"key": key, "size": len(payload), "eTag": etag},
        },
    }
    return {
        "Records": [
            {
                "messageId": f"bench-{key}",
                "receiptHandle": "r",
                "body": orjson.dumps({"Records": [record]}).decode(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1",
            }
        ]
    }


def main() -> None:
    """Parse options, run, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    parser.add_argument(
        "--no-s3", action="store_true", help="skip the handler path through moto's S3"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = parser.parse_args()
    rows = run(args.rows, args.chunk_rows, not args.no_s3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({"rows": rows}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
