"""Process one uploaded object: exactly one of an output with its summary, or an error record."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from functions.core.errors import InvalidInput, PayloadTooLarge
from functions.core.registry import Registry
from functions.telemetry import Telemetry

from .bucket import BatchBucket
from .faults import ObjectChanged, TransientFault, is_permanent
from .job import JobStats, run_job, unbounded
from .keys import InputKey, error_key_for_unparsed, parse_input_key

CONTENT_TYPES = {".npz": "application/octet-stream", ".jsonl": "application/x-ndjson"}


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
    ) -> None:
        self.registry = registry
        self.bucket = bucket
        self.chunk_rows = chunk_rows
        self.max_input_bytes = max_input_bytes
        self.telemetry = telemetry

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
        self.bucket.put_json(
            bucket, parsed.receipt(), {"etag": etag, "result": outcome.key, "at": _now()}
        )
        return outcome

    def _run(
        self,
        bucket: str,
        parsed: InputKey,
        etag: str,
        size: int,
        budget: Callable[[], float | None],
    ) -> Outcome:
        parsed.check_format()
        if size > self.max_input_bytes:
            raise PayloadTooLarge(
                f"the file is {size} bytes, over the batch limit of {self.max_input_bytes} "
                "(MAAS_BATCH_MAX_INPUT_BYTES)"
            )
        version = self.registry.resolve(parsed.model, parsed.ref)
        runner = self.registry.runner(parsed.model, str(version))
        with tempfile.TemporaryDirectory(prefix="maas-batch-") as tmp:
            out = Path(tmp) / "out"
            if parsed.suffix == ".npz":  # zip archives need to seek: stage on local disk
                staged = Path(tmp) / "input.npz"
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
