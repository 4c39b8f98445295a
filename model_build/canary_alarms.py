"""CloudWatch alarms on a canary version's request metrics, named for the rollback function.

An alarm named `maas-canary-{model}-{alias}-{kind}` watches the canary version's metrics (the
dimensions the API function emits: model, version, service); the stack's EventBridge rule sends
its change to ALARM to the rollback function, which reads the model and version from the
alarm's own metrics (functions/lifecycle/rollback.py).
"""

from __future__ import annotations

from typing import Any

from functions.lifecycle.rollback import ALARM_PREFIX

NAMESPACE = "serverless-maas"
SERVICE = "maas-api"  # the API function's Powertools service name (infra/api.py)
PERIOD_SECONDS = 60
KINDS = ("errors", "p99")


def alarm_name(model: str, alias: str, kind: str) -> str:
    """The name of a canary alarm: the prefix the stack's rule matches."""
    return f"{ALARM_PREFIX}{model}-{alias}-{kind}"


def put_canary_alarms(
    cloudwatch: Any,
    model: str,
    alias: str,
    version: int,
    *,
    errors_percent: float | None,
    p99_ms: float | None,
) -> list[str]:
    """Create (or replace) the alarms asked for; their names."""
    dimensions = [
        {"Name": "model", "Value": model},
        {"Name": "version", "Value": str(version)},
        {"Name": "service", "Value": SERVICE},
    ]

    def stat(metric: str, statistic: str) -> dict[str, Any]:
        return {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
            "Period": PERIOD_SECONDS,
            "Stat": statistic,
        }

    what = f"serverless-maas canary {model}:{alias} (version {version})"
    wanted: list[tuple[str, str, float, list[dict[str, Any]]]] = []
    if errors_percent is not None:
        errors = [
            {
                "Id": "errors",
                "Expression": "100 * failed / MAX([served, 1])",
                "Label": "server errors, % of requests",
                "ReturnData": True,
            },
            {"Id": "failed", "MetricStat": stat("ServerErrors", "Sum"), "ReturnData": False},
            {"Id": "served", "MetricStat": stat("Requests", "Sum"), "ReturnData": False},
        ]
        wanted.append(("errors", "server errors, % of requests", errors_percent, errors))
    if p99_ms is not None:
        p99 = [{"Id": "p99", "MetricStat": stat("Latency", "p99"), "ReturnData": True}]
        wanted.append(("p99", "p99 latency, ms", p99_ms, p99))
    created = []
    for kind, measured, threshold, metrics in wanted:
        name = alarm_name(model, alias, kind)
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"{what}: {measured}",
            Threshold=threshold,
            Metrics=metrics,
            ComparisonOperator="GreaterThanThreshold",
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            TreatMissingData="notBreaching",
        )
        created.append(name)
    return created


def delete_canary_alarms(cloudwatch: Any, model: str, alias: str) -> list[str]:
    """Delete the alias's canary alarms that exist; their names."""
    names = [alarm_name(model, alias, kind) for kind in KINDS]
    found = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]]
    if found:
        cloudwatch.delete_alarms(AlarmNames=found)
    return found
