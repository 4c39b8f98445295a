"""Running the Lambda handlers in-process: a real-shaped context and API Gateway events."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

EVENTS = Path(__file__).resolve().parent.parent / "events"


@dataclass
class LocalContext:
    """The attributes and method Lambda's Python context object offers."""

    function_name: str = "maas-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 2048
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/maas-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """An ARN of the shape Lambda passes."""
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (simulated) timeout."""
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


def load_event(name: str) -> dict[str, Any]:
    """An event file from events/, as AWS sends it."""
    event: dict[str, Any] = orjson.loads((EVENTS / name).read_bytes())
    return event


def api_event(
    path: str,
    body: bytes | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    binary: bool = False,
    template: str = "apigw-v2-infer.json",
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event from a template in events/, for `method path` and `body`.

    Path, method, body (base64 when `binary`, as API Gateway delivers binary bodies) and
    content length are set consistently; other headers are added as given (lower case).
    """
    event = load_event(template)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"].update(headers or {})
    event["isBase64Encoded"] = binary
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
        event["headers"].pop("content-type", None)
        return event
    event["body"] = base64.b64encode(body).decode() if binary else body.decode()
    event["headers"]["content-length"] = str(len(body))
    return event


def invoke_api(event: dict[str, Any], context: LocalContext | None = None) -> dict[str, Any]:
    """Run the API handler on `event` (the process's runtime: `functions.runtime`)."""
    from functions.api.handler import handler

    return dict(handler(event, context or LocalContext()))  # type: ignore[arg-type]


def invoke_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Run the batch handler on `event` (SQS-wrapped or direct S3 notifications)."""
    from functions.batch.handler import handler

    return handler(event, LocalContext(function_name="maas-batch-local", timeout_seconds=900))
