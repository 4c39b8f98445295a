"""Alarms, the dashboard, log retention, JSON logs, Powertools settings and tracing, by context."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from infra.config import RETENTION_DAYS, MaasConfig
from infra.telemetry import powertools, retention
from tests.infra.conftest import VARIANTS, Synth, synth

API = "functions.api.handler.handler"
BATCH = "functions.batch.handler.handler"
SHARD = "functions.batch.shard_handler.handler"
ROLLBACK = "functions.lifecycle.rollback.handler"
SERVICES = {
    API: "maas-api",
    BATCH: "maas-batch",
    SHARD: "maas-batch-shard",
    ROLLBACK: "maas-rollback",
    "image": "maas-heavy",
}
XRAY = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


@pytest.fixture(scope="module")
def default() -> Synth:
    return synth()


@pytest.fixture(scope="module")
def observed() -> Synth:
    return synth(**VARIANTS["observed"])


def _alarms(s: Synth) -> list[dict[str, Any]]:
    return [v["Properties"] for v in s.resources("AWS::CloudWatch::Alarm").values()]


def _alarm(s: Synth, namespace: str, metric: str, dimension: Any = None) -> dict[str, Any]:
    found = [
        a
        for a in _alarms(s)
        if (a.get("Namespace"), a.get("MetricName")) == (namespace, metric)
        and (dimension is None or dimension in [d["Value"] for d in a["Dimensions"]])
    ]
    assert len(found) == 1, (namespace, metric, dimension, found)
    return found[0]


def _function_ref(s: Synth, handler: str) -> dict[str, str]:
    """A Ref to the function with `handler` ("image": the container function)."""
    [logical] = [
        k
        for k, v in s.resources("AWS::Lambda::Function").items()
        if v["Properties"].get("Handler", "image" if "ImageUri" in str(v) else None) == handler
    ]
    return {"Ref": logical}


def _topic(s: Synth) -> dict[str, str]:
    [logical] = [
        k
        for k, v in s.resources("AWS::SNS::Topic").items()
        if v["Properties"].get("DisplayName") == "serverless-maas alarms"
    ]
    return {"Ref": logical}


def _functions(s: Synth) -> dict[str, dict[str, Any]]:
    return {
        p["Properties"].get("Handler", "image"): p["Properties"]
        for p in s.resources("AWS::Lambda::Function").values()
        if p["Properties"].get("Handler", "").startswith("functions.")
        or p["Properties"].get("PackageType") == "Image"
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alarm_notifies_the_alarm_topic(variant: str) -> None:
    s = synth(**VARIANTS[variant])
    topic = _topic(s)
    scaling = {
        k for k, v in s.doc["Resources"].items() if v["Type"].startswith("AWS::ApplicationAuto")
    }
    for alarm in _alarms(s):
        if any(a.get("Ref") in scaling for a in alarm["AlarmActions"]):
            continue  # HasBacklogWithoutCapacity starts the first GPU instance; nobody is paged
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], alarm
        assert alarm["TreatMissingData"] == "notBreaching", alarm


def test_api_alarms(default: Synth) -> None:
    # 5xx as a share of requests on the $default stage, through metric math
    [rate] = [a for a in _alarms(default) if "Metrics" in a]
    expression = next(m["Expression"] for m in rate["Metrics"] if "Expression" in m)
    assert expression == "IF(requests >= 10, 100 * FILL(errors, 0) / requests, 0)"
    stats = {
        m["Id"]: (m["MetricStat"]["Metric"], m["MetricStat"]["Stat"])
        for m in rate["Metrics"]
        if "MetricStat" in m
    }
    for id, name in (("requests", "Count"), ("errors", "5xx")):
        metric, stat = stats[id]
        assert (metric["Namespace"], metric["MetricName"], stat) == ("AWS/ApiGateway", name, "Sum")
        assert {"Name": "Stage", "Value": "$default"} in metric["Dimensions"]
    assert (rate["Threshold"], rate["ComparisonOperator"], rate["EvaluationPeriods"]) == (
        1,
        "GreaterThanThreshold",
        2,
    )
    latency = _alarm(default, "AWS/ApiGateway", "Latency")
    assert (latency["ExtendedStatistic"], latency["Threshold"], latency["Period"]) == (
        "p99",
        5000,
        300,
    )
    assert {"Name": "Stage", "Value": "$default"} in latency["Dimensions"]


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_function_alarms(default: Synth, observed: Synth, metric: str) -> None:
    for handler in (API, BATCH, SHARD, ROLLBACK):
        alarm = _alarm(default, "AWS/Lambda", metric, _function_ref(default, handler))
        assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 1, 300)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # the heavy-CPU function, when it exists
    _alarm(observed, "AWS/Lambda", metric, _function_ref(observed, "image"))
    assert len([a for a in _alarms(default) if a.get("MetricName") == metric]) == 4


def test_the_dead_letter_alarm_pages(default: Synth) -> None:
    alarm = _alarm(default, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 1)
    assert alarm["AlarmActions"] == [_topic(default)]


def test_thresholds_come_from_context(observed: Synth) -> None:
    [rate] = [a for a in _alarms(observed) if "Metrics" in a]
    assert rate["Threshold"] == 2.5
    assert _alarm(observed, "AWS/ApiGateway", "Latency")["Threshold"] == 1500
    # the GPU backlog alarm: twice what the largest fleet is scaled to hold (5 per instance)
    assert _alarm(observed, "AWS/SageMaker", "ApproximateBacklogSize")["Threshold"] == 30


def test_gpu_alarms_only_with_the_gpu(default: Synth) -> None:
    assert not [a for a in _alarms(default) if a.get("Namespace") == "AWS/SageMaker"]
    backlog = _alarm(synth(gpu="true"), "AWS/SageMaker", "ApproximateBacklogSize")
    assert (backlog["Threshold"], backlog["EvaluationPeriods"]) == (20, 3)
    realtime = synth(gpu="true", gpuMode="realtime", gpuInstanceType="ml.g4dn.xlarge")
    errors = _alarm(realtime, "AWS/SageMaker", "Invocation5XXErrors")
    assert (errors["Statistic"], errors["Threshold"]) == ("Sum", 1)
    assert {d["Name"] for d in errors["Dimensions"]} == {"EndpointName", "VariantName"}
    assert not [a for a in _alarms(realtime) if a.get("MetricName") == "ApproximateBacklogSize"]


def test_the_alarm_topic_is_encrypted_tls_only_and_open_to_cloudwatch(
    default: Synth, observed: Synth
) -> None:
    topic = default.doc["Resources"][_topic(default)["Ref"]]["Properties"]
    key = default.doc["Resources"][topic["KmsMasterKeyId"]["Fn::GetAtt"][0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(
        st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and st["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
        for st in key["KeyPolicy"]["Statement"]
    )
    [policy] = [
        p["Properties"]
        for p in default.resources("AWS::SNS::TopicPolicy").values()
        if _topic(default) in p["Properties"]["Topics"]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    [publish] = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # an e-mail subscription only when maas:alarmEmail is set
    assert not default.resources("AWS::SNS::Subscription")
    subscription = observed.one("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "oncall@example.com")
    assert {"AlarmTopic", "DashboardName"} <= set(default.doc["Outputs"])


def _dashboard(s: Synth) -> list[list[Any]]:
    """Every metric row of the dashboard's graphs (tokens replaced by a placeholder)."""
    parts = s.one("AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    return [row for w in body["widgets"] for row in w["properties"].get("metrics", [])]


def _searches(s: Synth) -> set[str]:
    return {row[0]["expression"] for row in _dashboard(s) if "expression" in row[0]}


def test_the_dashboard_searches_the_emf_metrics_per_model(default: Synth) -> None:
    schema = '{"serverless-maas",service,model,version}'
    searches = _searches(default)
    for metric, stat in [
        ("Latency", "p50"),
        ("Latency", "p99"),
        ("Requests", "Sum"),
        ("ClientErrors", "Sum"),
        ("ServerErrors", "Sum"),
        ("ModelLoadTime", "Maximum"),
        ("ModelLoadFailures", "Sum"),
    ]:
        assert f"SEARCH('{schema} MetricName=\"{metric}\"', '{stat}', 300)" in searches
    assert (
        f'SEARCH(\'{schema} MetricName="BatchRowsPerSecond" service="maas-batch"\', '
        "'Average', 300)"
    ) in searches
    assert (
        "SEARCH('{\"serverless-maas\",service} MetricName=\"ColdStart\"', 'Sum', 300)" in searches
    )


def test_the_dashboard_shows_aws_metrics(default: Synth, observed: Synth) -> None:
    shown = {(row[0], row[1]) for row in _dashboard(default) if isinstance(row[0], str)}
    assert {
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "4xx"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    } <= shown
    assert not {m for m in shown if m[0] == "AWS/SageMaker"}
    gpu = {(row[0], row[1]) for row in _dashboard(observed) if isinstance(row[0], str)}
    assert ("AWS/SageMaker", "ApproximateBacklogSize") in gpu
    heavy = [row for row in _dashboard(observed) if row[:2] == ["AWS/Lambda", "Errors"]]
    labels = [row[-1]["label"] for row in heavy]
    assert labels == ["maas-api", "maas-batch", "maas-batch-shard", "maas-rollback", "maas-heavy"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_log_group_keeps_the_configured_retention(variant: str) -> None:
    s = synth(**VARIANTS[variant])
    days = int(VARIANTS[variant].get("logRetentionDays", "90"))
    groups = s.resources("AWS::Logs::LogGroup")
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {days}
    # every function writes to one of them, so Lambda never creates one that is kept forever
    for function in s.resources("AWS::Lambda::Function").values():
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups


def test_the_gpu_endpoint_logs_to_its_own_group(observed: Synth) -> None:
    name = observed.one("AWS::SageMaker::Endpoint")["EndpointName"]
    group = observed.one("AWS::Logs::LogGroup", LogGroupName=f"/aws/sagemaker/Endpoints/{name}")
    assert group["RetentionInDays"] == 365
    granted = [
        st
        for p in observed.resources("AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if "logs:PutLogEvents" in st["Action"]
    ]
    assert len(granted) == 1 and "/aws/sagemaker/Endpoints/*" not in json.dumps(granted)
    assert f"/aws/sagemaker/Endpoints/{name}" in json.dumps(granted[0]["Resource"])


def test_retention_maps_every_allowed_value() -> None:
    stack = Stack(App(), "Retention")
    for days in RETENTION_DAYS:
        logs.LogGroup(stack, f"G{days}", retention=retention(days))
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["RetentionInDays"] for g in groups.values()) == list(
        RETENTION_DAYS
    )


@pytest.mark.parametrize(("level", "python"), [("DEBUG", "DEBUG"), ("INFO", "INFO")])
def test_powertools_log_level_is_pythons_name_for_lambdas(level: str, python: str) -> None:
    env = powertools("maas-api", config=MaasConfig(log_level=level))
    assert env["POWERTOOLS_LOG_LEVEL"] == python


def test_functions_log_json_with_powertools_settings(default: Synth, observed: Synth) -> None:
    for s, level, python, traced in (
        (default, "INFO", "INFO", False),
        (observed, "DEBUG", "DEBUG", True),
    ):
        functions = _functions(s)
        every = {API, BATCH, SHARD, ROLLBACK}
        assert set(functions) == (every | {"image"} if traced else every)
        for handler, fn in functions.items():
            config = fn["LoggingConfig"]
            assert (config["LogFormat"], config["ApplicationLogLevel"]) == ("JSON", level)
            assert config["SystemLogLevel"] == "WARN"
            env = fn["Environment"]["Variables"]
            assert {k: v for k, v in env.items() if k.startswith("POWERTOOLS_")} == {
                "POWERTOOLS_SERVICE_NAME": SERVICES[handler],
                "POWERTOOLS_METRICS_NAMESPACE": "serverless-maas",
                "POWERTOOLS_LOG_LEVEL": python,
                "POWERTOOLS_TRACE_DISABLED": "false" if traced else "true",
            }


def test_the_gpu_container_reports_as_maas_gpu_untraced(observed: Synth) -> None:
    env = observed.one("AWS::SageMaker::Model")["PrimaryContainer"]["Environment"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "maas-gpu"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "serverless-maas"
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"  # no X-Ray daemon beside SageMaker


def _xray_statements(s: Synth) -> list[dict[str, Any]]:
    return [
        st
        for p in s.resources("AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if "xray" in json.dumps(st["Action"])
    ]


def test_tracing_off_by_default(default: Synth) -> None:
    assert not [f for f in _functions(default).values() if "TracingConfig" in f]
    assert not _xray_statements(default)


def test_tracing_on_by_context(observed: Synth) -> None:
    functions = _functions(observed)
    assert all(f["TracingConfig"] == {"Mode": "Active"} for f in functions.values())
    xray = _xray_statements(observed)
    assert len(xray) == len(functions) + 1 == 6  # and the shard state machine's role
    assert all(st["Resource"] == "*" for st in xray)
    assert sum(sorted(st["Action"]) == XRAY for st in xray) == len(functions)


def test_the_xray_acknowledgement_covers_only_the_traced_roles(observed: Synth) -> None:
    report = json.loads((observed.outdir / "validation-report.json").read_text())
    star = [
        v
        for v in report["pluginReports"][0]["suppressedViolations"]
        if v["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
    ]
    paths: dict[str, list[str]] = {}
    for v in star:
        paths.setdefault(v["reason"].split(":")[0], []).extend(
            c["constructPath"] for c in v["violatingConstructs"]
        )
    paths = {reason: sorted(p) for reason, p in paths.items()}
    assert paths == {
        "Active tracing": [
            "Maas/Api/Function/ServiceRole/DefaultPolicy/Resource",
            "Maas/Batch/Function/ServiceRole/DefaultPolicy/Resource",
            "Maas/Batch/Shard/Function/ServiceRole/DefaultPolicy/Resource",
            "Maas/Heavy/Function/ServiceRole/DefaultPolicy/Resource",
            "Maas/Rollback/Function/ServiceRole/DefaultPolicy/Resource",
        ],
        "ecr": ["Maas/Gpu/Role/DefaultPolicy/Resource"],
        "Step Functions logging": ["Maas/Batch/Shards/Role/DefaultPolicy/Resource"],
    }
