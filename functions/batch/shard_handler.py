"""The shard state machine's function: score one shard, record a failed one, or combine.

Events (the state machine's definition, `infra/batch.py`, writes them):
- `{"action": "shard", "job": {...}, "shard": {...}}`: score the shard into its part; a fault a
  retry may fix raises (the state machine retries the shard), any other is its result;
- `{"action": "shard-failed", "job": {...}, "shard": {...}, "error": {"Error", "Cause"}}`:
  the shard failed past its retries: record why;
- `{"action": "finish", "job": {...}}`: combine the parts into the output, its summary and the
  receipt, or write the input's error record naming the failed shards.

`job` is what the batch function started the execution with: bucket, key, etag, the version
every shard uses, and the keys of the plan's head and of its items.
"""

from __future__ import annotations

from typing import Any

from functions.batch.handler import objects
from functions.batch.job import unbounded
from functions.runtime import Runtime, get_runtime, lambda_budget


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One state machine step."""
    return handle(get_runtime(), event, context)


def handle(runtime: Runtime, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`handler` for a given runtime."""
    runtime.telemetry.lambda_context(context)
    processor = objects(runtime)
    action, job = event.get("action"), event["job"]
    if action == "shard":

        def budget() -> float | None:
            return lambda_budget(context)

        result = processor.score_shard(
            job, event["shard"], budget if context is not None else unbounded
        )
        return {"index": result["index"], "status": result["status"]}
    if action == "shard-failed":
        processor.shard_failed(job, event["shard"], event.get("error"))
        return {"index": event["shard"]["index"], "status": "error"}
    if action == "finish":
        outcome = processor.finish_shards(job)
        return {"kind": outcome.kind, "key": outcome.key, "rows": outcome.rows}
    raise ValueError(f"unknown action {action!r}: shard, shard-failed or finish")
