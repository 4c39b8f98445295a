"""What every function and container shares to be observable: logs, Powertools, tracing."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import RETENTION_DAYS, MaasConfig

# The EMF namespace the functions write their metrics to (Powertools' POWERTOOLS_METRICS_NAMESPACE).
NAMESPACE: Final = "serverless-maas"
# Every metric carries these dimensions, except ColdStart (service only).
DIMENSIONS: Final = ("service", "model", "version")
# CDK's bucket-notification handler: one per stack, created by `add_event_notification`.
NOTIFICATIONS_HANDLER: Final = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
_RETENTION: Final = dict(zip(RETENTION_DAYS, list(logs.RetentionDays)[:-1], strict=True))


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a validated `maas:logRetentionDays`."""
    return _RETENTION[days]


def log_group(scope: Construct, id: str, *, config: MaasConfig, **props: Any) -> logs.LogGroup:
    """A log group kept `maas:logRetentionDays` days."""
    return logs.LogGroup(scope, id, retention=retention(config.log_retention_days), **props)


def powertools(service: str, *, config: MaasConfig, tracing: bool | None = None) -> dict[str, str]:
    """Powertools' environment: service name, metrics namespace, log level, tracer on or off."""
    traced = config.tracing if tracing is None else tracing
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        "POWERTOOLS_TRACE_DISABLED": "false" if traced else "true",
    }


def function_props(
    scope: Construct, *, service: str, config: MaasConfig, environment: dict[str, str]
) -> dict[str, Any]:
    """Lambda props for JSON logs at the configured level, retention, Powertools and tracing."""
    return {
        "environment": environment | powertools(service, config=config),
        "log_group": log_group(scope, "Logs", config=config),
        "logging_format": lambda_.LoggingFormat.JSON,
        "application_log_level_v2": lambda_.ApplicationLogLevel(config.log_level),
        # The platform's own lines (START, END, REPORT are INFO): only its warnings and errors.
        "system_log_level_v2": lambda_.SystemLogLevel.WARN,
        "tracing": lambda_.Tracing.ACTIVE if config.tracing else None,
    }


def keep_handler_logs(stack: Stack, *, config: MaasConfig) -> None:
    """Give CDK's bucket-notification handler a log group with the configured retention.

    Without one, Lambda creates `/aws/lambda/<name>` on its first run, kept forever.
    """
    handler = stack.node.try_find_child(NOTIFICATIONS_HANDLER)
    if handler is None:
        return
    function = handler.node.default_child
    assert isinstance(function, CfnResource)
    group = log_group(handler, "Logs", config=config)
    function.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
