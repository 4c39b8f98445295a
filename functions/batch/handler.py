"""The batch Lambda handler: S3 ObjectCreated events via SQS (or direct), partial batch failures.

It never imports FastAPI: a batch cold start pays only for what the batch path uses. The
runtime (settings, registry, telemetry) is the one every entry point shares.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.batch.bucket import BatchBucket
from functions.batch.faults import TransientFault
from functions.batch.job import unbounded
from functions.batch.processor import ObjectProcessor, Outcome, ShardMachine
from functions.runtime import Runtime, get_runtime, lambda_budget


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS events: partial batch responses. A direct S3 event fails whole on a transient fault."""
    return handle(get_runtime(), event, context)


def handle(runtime: Runtime, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`handler` for a given runtime."""
    runtime.telemetry.lambda_context(context)
    scorer = objects(runtime)

    def budget() -> float | None:
        return lambda_budget(context)

    def process_s3_event(s3_event: S3Event) -> list[Outcome]:
        """Every object in an S3 notification; a transient fault is raised after the others."""
        outcomes: list[Outcome] = []
        faults: list[str] = []
        for record in s3_event.records:
            if not record.event_name.startswith("ObjectCreated"):
                continue
            obj = record.s3.get_object
            try:
                outcomes.append(
                    scorer.process(
                        bucket=record.s3.bucket.name,
                        # S3 sends keys URL-encoded, spaces as '+':
                        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
                        key=unquote_plus(obj.key),
                        etag=obj.etag,
                        size=obj.size,
                        budget=budget if context is not None else unbounded,
                    )
                )
            except TransientFault as exc:
                faults.append(str(exc))
        if faults:
            raise TransientFault("; ".join(faults))
        return outcomes

    def record_handler(record: SQSRecord) -> list[Outcome]:
        """One SQS message: an S3 notification (S3's own test message is acknowledged)."""
        if record.json_body.get("Event") == "s3:TestEvent":
            return []
        return process_s3_event(record.decoded_nested_s3_event)

    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:s3":
        outcomes = process_s3_event(S3Event(event))
        return {"outcomes": [{"kind": o.kind, "key": o.key} for o in outcomes]}
    # Report every failed message as an item failure, even when all of them failed, rather than
    # failing the invocation: SQS retries exactly those messages; the response names them.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response: dict[str, Any] = dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
    return response


@cache
def objects(runtime: Runtime) -> ObjectProcessor:
    """The object processor over the runtime's registry and a boto3 S3 client (once)."""
    settings = runtime.settings
    machine = settings.batch_state_machine
    return ObjectProcessor(
        registry=runtime.registry,
        bucket=BatchBucket(),
        chunk_rows=settings.batch_chunk_rows,
        max_input_bytes=settings.batch_max_input_bytes,
        telemetry=runtime.telemetry,
        shards=ShardMachine(machine) if machine else None,
        shard_above_bytes=settings.batch_shard_above_bytes,
        shard_bytes=settings.batch_shard_bytes,
    )


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):  # on Lambda: build during the init phase
    objects(get_runtime())
