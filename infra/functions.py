"""The Python zip functions: what the API and batch functions share."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import MaasConfig


def architecture(name: str) -> lambda_.Architecture:
    """The Lambda architecture for a context value."""
    return lambda_.Architecture.ARM_64 if name == "arm64" else lambda_.Architecture.X86_64


def python_function(
    scope: Construct,
    *,
    handler: str,
    code: lambda_.Code,
    config: MaasConfig,
    memory_mb: int,
    timeout_seconds: int,
    environment: dict[str, str],
    description: str,
    **extra: Any,
) -> lambda_.Function:
    """`scope`/Function: Python 3.12 on the configured architecture, logs kept three months."""
    return lambda_.Function(
        scope,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=architecture(config.architecture),
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_seconds),
        environment=environment,
        log_group=logs.LogGroup(scope, "Logs", retention=logs.RetentionDays.THREE_MONTHS),
        description=description,
        **extra,
    )
