"""Running a Lambda handler in-process on an event file, with a real-shaped context."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


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


def invoke_api(event: dict[str, Any]) -> dict[str, Any]:
    """Run the API handler (imported here: it reads settings on import) on `event`."""
    from functions.api.handler import handler

    return handler(event, LocalContext())


def invoke_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Run the batch handler on `event` (SQS-wrapped or direct S3 notifications)."""
    from functions.batch.handler import handler

    return handler(event, LocalContext(function_name="maas-batch-local", timeout_seconds=900))
