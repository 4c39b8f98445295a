"""The Python zip functions: what the API and batch functions share."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .config import MaasConfig
from .telemetry import function_props


def architecture(name: str) -> lambda_.Architecture:
    """The Lambda architecture for a context value."""
    return lambda_.Architecture.ARM_64 if name == "arm64" else lambda_.Architecture.X86_64


# What the runtime, Python's bytecode cache and temporary files may need of /tmp besides the cache.
TMP_RESERVE_MB = 256


def cache_mb(ephemeral_mb: int) -> int:
    """The artifact cache's share of a function's ephemeral storage (MAAS_CACHE_MAX_MB)."""
    return ephemeral_mb - TMP_RESERVE_MB


def python_function(
    scope: Construct,
    *,
    handler: str,
    code: lambda_.Code,
    config: MaasConfig,
    service: str,
    memory_mb: int,
    timeout_seconds: int,
    environment: dict[str, str],
    description: str,
    **extra: Any,
) -> lambda_.Function:
    """`scope`/Function: Python 3.12 on the configured architecture, observable as `service`."""
    return lambda_.Function(
        scope,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=architecture(config.architecture),
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_seconds),
        description=description,
        **function_props(scope, service=service, config=config, environment=environment),
        **extra,
    )
