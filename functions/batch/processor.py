"""Process one uploaded object: exactly one of an output with its summary, or an error record."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from functions.core.errors import InvalidInput, MaasError, PayloadTooLarge
from functions.core.registry import Registry
from functions.telemetry import Telemetry

from .bucket import BatchBucket
from .fanout import combine, failure, run_shard
from .faults import ObjectChanged, ShardsFailed, TransientFault, is_permanent
from .formats import FormatError, output_suffix
from .job import JobStats, run_job, unbounded
from .keys import InputKey, error_key_for_unparsed, parse_input_key
from .shards import NotShardable, Plan, Shard, plan_shards

CONTENT_TYPES = {
    ".npz": "application/octet-stream",
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one object: output, error, skipped (a duplicate) or superseded."""

    kind: str
    key: str
    model: str | None = None
    version: int | None = None
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ObjectProcessor:
    """Turns `inputs/...` objects into outputs or error records, once per ETag."""

    def __init__(
        self,
        *,
        registry: Registry,
        bucket: BatchBucket,
        chunk_rows: int,
        max_input_bytes: int,
        telemetry: Telemetry,
        shards: ShardMachine | None = None,
        shard_above_bytes: int = 0,
        shard_bytes: int = 0,
    ) -> None:
        self.registry = registry
        self.bucket = bucket
        self.chunk_rows = chunk_rows
        self.max_input_bytes = max_input_bytes
        self.telemetry = telemetry
        self.shards = shards
        self.shard_above_bytes = shard_above_bytes
        self.shard_bytes = shard_bytes

    def process(
        self,
        *,
        bucket: str,
        key: str,
        etag: str,
        size: int,
        budget: Callable[[], float | None] = unbounded,
    ) -> Outcome:
        """Handle one object and log its outcome; raise TransientFault when a retry may succeed.

        `budget()` bounds each chunk's run (the invocation's remaining time on Lambda).
        """
        started = time.perf_counter()
        outcome = Outcome("retry", key)  # until it is known (an unexpected error is retried)
        try:
            outcome = self._process(bucket, key, etag, size, budget)
        except TransientFault as exc:
            outcome = Outcome("retry", key, error=str(exc))
            raise
        finally:
            self.telemetry.batch_object(
                key=key,
                outcome=outcome.kind,
                model=outcome.model,
                version=outcome.version,
                rows=outcome.rows,
                seconds=time.perf_counter() - started,
                error=outcome.error,
            )
        return outcome

    def _process(
        self, bucket: str, key: str, etag: str, size: int, budget: Callable[[], float | None]
    ) -> Outcome:
        try:
            parsed = parse_input_key(key)
        except InvalidInput as exc:
            return self._error(bucket, error_key_for_unparsed(key), key, etag, exc, receipt=None)
        receipt = self.bucket.read_json(bucket, parsed.receipt())
        if receipt is not None and receipt.get("etag") == etag:
            return Outcome("skipped", str(receipt.get("result")), parsed.model)
        try:
            outcome = self._run(bucket, parsed, etag, size, budget)
        except ObjectChanged:
            return Outcome("superseded", key, parsed.model)
        except TransientFault:
            raise
        except Exception as exc:
            if not is_permanent(exc):
                raise TransientFault(f"{key}: {type(exc).__name__}: {exc}") from exc
            return self._error(bucket, parsed.error(), key, etag, exc, receipt=parsed)
        if outcome.kind == "output":  # shards: the combining step writes the receipt
            self._receipt(bucket, parsed, etag, outcome.key)
        return outcome

    def _receipt(self, bucket: str, parsed: InputKey, etag: str, result: str) -> None:
        self.bucket.put_json(
            bucket, parsed.receipt(), {"etag": etag, "result": result, "at": _now()}
        )

    def _run(
        self,
        bucket: str,
        parsed: InputKey,
        etag: str,
        size: int,
        budget: Callable[[], float | None],
    ) -> Outcome:
        parsed.check_format()
        if self.shards is not None and size > self.shard_above_bytes:
            try:
                return self._fan_out(bucket, parsed, etag, size)
            except NotShardable:  # a compressed .npz: whole, if one invocation may take it
                if size > self.max_input_bytes:
                    raise
        if size > self.max_input_bytes:
            raise PayloadTooLarge(
                f"the file is {size} bytes, over the batch limit of {self.max_input_bytes} "
                "(MAAS_BATCH_MAX_INPUT_BYTES) for scoring in one invocation, and no shard "
                "state machine is configured (MAAS_BATCH_STATE_MACHINE)"
            )
        # A canary takes whole files, the same file always the same side: keyed by its key
        version = self.registry.resolve(parsed.model, parsed.ref, parsed.key)
        runner = self.registry.runner(parsed.model, str(version))
        with tempfile.TemporaryDirectory(prefix="maas-batch-") as tmp:
            out = Path(tmp) / "out"
            if parsed.suffix in (".npz", ".parquet"):  # these need to seek: stage on local disk
                staged = Path(tmp) / f"input{parsed.suffix}"
                self.bucket.download(bucket, parsed.key, etag, staged)
                source: IO[bytes] = staged.open("rb")
            else:
                source = self.bucket.open(bucket, parsed.key, etag)
            with source:
                stats = run_job(
                    source,
                    suffix=parsed.suffix,
                    runner=runner,
                    out=out,
                    chunk_rows=self.chunk_rows,
                    budget=budget,
                )
            output = parsed.output(version, stats.output_format)
            self.bucket.upload(bucket, output, out, CONTENT_TYPES[stats.output_format])
        summary = self._summary(parsed, etag, version, runner.manifest.sha256, output, stats)
        self.bucket.put_json(bucket, parsed.summary(version), summary)
        return Outcome("output", output, parsed.model, version, stats.rows)

    # --- large inputs: a shard plan scored by a state machine ------------------------------------

    def _fan_out(self, bucket: str, parsed: InputKey, etag: str, size: int) -> Outcome:
        """Plan the shards and start their execution (once per key and ETag)."""
        assert self.shards is not None
        version = self.registry.resolve(parsed.model, parsed.ref, parsed.key)  # every shard
        inputs = self.registry.manifest(parsed.model, str(version)).inputs  # no model load
        with self.bucket.seekable(bucket, parsed.key, etag, size) as handle:
            plan = plan_shards(handle, size, parsed.suffix, inputs, self.shard_bytes)
        prefix = parsed.shards(etag)
        self.bucket.put_json(bucket, f"{prefix}head.json", plan.head())
        self.bucket.put_json(bucket, f"{prefix}items.json", [s.to_json() for s in plan.shards])
        job = {"bucket": bucket, "key": parsed.key, "etag": etag, "version": version}
        job |= {"head": f"{prefix}head.json", "items": f"{prefix}items.json"}
        started = self.shards.start(execution_name(parsed.key, etag), job)
        kind = "sharded" if started else "skipped"  # skipped: its execution runs or ran
        return Outcome(kind, prefix, parsed.model, version, plan.rows or 0)

    def score_shard(
        self, job: dict[str, Any], shard_doc: dict[str, Any], budget: Callable[[], float | None]
    ) -> dict[str, Any]:
        """One shard of a job: its part and its result (raises TransientFault to be retried)."""
        bucket, key, etag = job["bucket"], job["key"], job["etag"]
        parsed = parse_input_key(key)
        plan, shard = self._plan(job, shards=False), Shard.from_json(shard_doc)
        runner = self.registry.runner(parsed.model, str(job["version"]))
        fmt = output_suffix(plan.suffix, runner.manifest.outputs)
        prefix = parsed.shards(etag)

        def open_range(start: int, end: int) -> IO[bytes]:
            return self.bucket.open_range(bucket, key, etag, start, end)

        with tempfile.TemporaryDirectory(prefix="maas-shard-") as tmp:
            out = Path(tmp) / "part"
            try:
                result = run_shard(
                    plan,
                    shard,
                    runner=runner,
                    open_range=open_range,
                    out=out,
                    chunk_rows=self.chunk_rows,
                    budget=budget,
                )
            except ObjectChanged:
                result = {"index": shard.index, "status": "superseded"}
            except TransientFault:
                raise
            except Exception as exc:  # the state machine retries the shard
                raise TransientFault(f"{key}, shard {shard.index}: {exc}") from exc
            if result["status"] == "ok":
                self.bucket.upload(bucket, _part(prefix, shard.index, fmt), out, CONTENT_TYPES[fmt])
        self.bucket.put_json(bucket, _part(prefix, shard.index, ".json"), result)
        return result

    def shard_failed(self, job: dict[str, Any], shard_doc: dict[str, Any], error: Any) -> None:
        """Record a shard that failed past its retries (the state machine's catch)."""
        shard = Shard.from_json(shard_doc)
        cause = error.get("Cause", "") if isinstance(error, dict) else str(error)
        kind = error.get("Error", "Error") if isinstance(error, dict) else "Error"
        try:  # a Lambda failure's cause is a JSON document with the exception's message
            cause = orjson.loads(cause).get("errorMessage", cause)
        except (orjson.JSONDecodeError, AttributeError):
            pass
        result = {"index": shard.index, "status": "error", "kind": kind}
        result["error"] = f"failed past its retries: {kind}: {str(cause)[:1000]}"
        prefix = parse_input_key(job["key"]).shards(job["etag"])
        self.bucket.put_json(job["bucket"], _part(prefix, shard.index, ".json"), result)

    def finish_shards(self, job: dict[str, Any]) -> Outcome:
        """Combine the parts into the output (with its summary and receipt), or the error."""
        started = time.perf_counter()
        bucket, key, etag, version = job["bucket"], job["key"], job["etag"], int(job["version"])
        parsed, plan = parse_input_key(key), self._plan(job, shards=True)
        prefix = parsed.shards(etag)
        with ThreadPoolExecutor(16, thread_name_prefix="maas-results") as pool:
            results = list(
                pool.map(
                    lambda s: self.bucket.read_json(bucket, _part(prefix, s.index, ".json")),
                    plan.shards,
                )
            )
        superseded = any(r is not None and r.get("status") == "superseded" for r in results)
        if superseded or not self.bucket.unchanged(bucket, key, etag):
            return Outcome("superseded", key, parsed.model)  # the newer object's event runs
        message = failure(plan, results)
        error: MaasError | None = ShardsFailed(message) if message is not None else None
        if error is None and not sum(int(r["rows"]) for r in results if r):
            error = FormatError("the file has no rows")
        if error is not None:
            outcome = self._error(bucket, parsed.error(), key, etag, error, receipt=parsed)
        else:
            manifest = self.registry.manifest(parsed.model, str(version))  # no model load
            fmt = output_suffix(plan.suffix, manifest.outputs)
            with tempfile.TemporaryDirectory(prefix="maas-combine-") as tmp:
                out = Path(tmp) / f"out{fmt}"

                def parts() -> Iterator[Path]:  # one part on disk at a time
                    for shard in plan.shards:
                        part = Path(tmp) / "part"
                        self.bucket.download(bucket, _part(prefix, shard.index, fmt), "", part)
                        yield part

                rows = combine(plan, manifest, parts(), out, self.chunk_rows)
                output = parsed.output(version, fmt)
                self.bucket.upload(bucket, output, out, CONTENT_TYPES[fmt])
            seconds = sum(float(r.get("seconds", 0)) for r in results if r)
            stats = JobStats(rows=rows, chunks=len(plan.shards), output_format=fmt, seconds=seconds)
            summary = self._summary(parsed, etag, version, manifest.sha256, output, stats)
            summary |= {"shards": len(plan.shards), "shard_parts": prefix}
            self.bucket.put_json(bucket, parsed.summary(version), summary)
            self._receipt(bucket, parsed, etag, output)
            outcome = Outcome("output", output, parsed.model, version, rows)
        self.telemetry.batch_object(
            key=key,
            outcome=outcome.kind,
            model=outcome.model,
            version=version,
            rows=outcome.rows,
            seconds=time.perf_counter() - started,
            error=outcome.error,
        )
        return outcome

    def _plan(self, job: dict[str, Any], *, shards: bool) -> Plan:
        """The job's plan: its head, and its shards where the step needs them all."""
        bucket = job["bucket"]
        head = self.bucket.read_json(bucket, job["head"])
        items = self.bucket.read_items(bucket, job["items"]) if shards else []
        if head is None or items is None:
            raise TransientFault(f"the shard plan under s3://{bucket}/{job['head']} is missing")
        return Plan.from_json(head, items)

    def _summary(
        self, parsed: InputKey, etag: str, version: int, sha256: str, output: str, stats: JobStats
    ) -> dict[str, Any]:
        return {
            "input": parsed.key,
            "input_etag": etag,
            "model": parsed.model,
            "requested": parsed.ref,
            "version": version,
            "artifact_sha256": sha256,
            "rows": stats.rows,
            "chunks": stats.chunks,
            "chunk_rows": self.chunk_rows,
            "output": output,
            "format": stats.output_format.lstrip("."),
            "duration_seconds": round(stats.seconds, 3),
            "finished_at": _now(),
        }

    def _error(
        self,
        bucket: str,
        error_key: str,
        key: str,
        etag: str,
        exc: BaseException,
        receipt: InputKey | None,
    ) -> Outcome:
        record = {
            "input": key,
            "input_etag": etag,
            "error": str(exc),
            "kind": type(exc).__name__,
            "retryable": False,
            "at": _now(),
        }
        self.bucket.put_json(bucket, error_key, record)
        if receipt is not None:
            self.bucket.put_json(
                bucket, receipt.receipt(), {"etag": etag, "result": error_key, "at": _now()}
            )
        model = receipt.model if receipt is not None else None
        return Outcome("error", error_key, model, error=str(exc))


def _part(prefix: str, index: int, suffix: str) -> str:
    return f"{prefix}part-{index:05d}{suffix}"


def execution_name(key: str, etag: str) -> str:
    """A state machine execution's name for one input version: the same for duplicate events
    (Step Functions refuses a second execution of a name), within its 80 characters."""
    digest = hashlib.sha256(f"{key}\n{etag.strip(chr(34))}".encode()).hexdigest()
    return f"maas-batch-{digest[:64]}"


class ShardMachine:
    """Starts the shard state machine's executions."""

    def __init__(self, arn: str, client: Any = None) -> None:
        import boto3

        from functions.stores.s3 import CLIENT_CONFIG

        self.arn = arn
        self.client = client or boto3.client("stepfunctions", config=CLIENT_CONFIG)

    def start(self, name: str, job: dict[str, Any]) -> bool:
        """Start an execution; False when one of that name exists (a duplicate event)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.start_execution(
                stateMachineArn=self.arn, name=name, input=orjson.dumps(job).decode()
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise TransientFault(f"cannot start the shard state machine: {exc}") from None
        except BotoCoreError as exc:
            raise TransientFault(f"cannot reach Step Functions: {exc}") from None
        return True
