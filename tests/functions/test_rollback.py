"""The canary rollback function on real-shaped alarm state change events, over moto's S3."""

from __future__ import annotations

import copy
import io
from typing import Any

import boto3
import orjson
import pytest

from functions.core.repository import AliasRoute, Repository
from functions.lifecycle import rollback
from functions.runtime import build_runtime, set_runtime
from functions.settings import Settings
from functions.stores import open_store
from functions.telemetry import Telemetry
from model_build.lambda_local import LocalContext
from tests import models
from tests.conftest import EVENTS, MotoServer, free_port, publish


def alarm_event() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((EVENTS / "cloudwatch-canary-alarm.json").read_bytes())
    return doc


@pytest.fixture
def store(moto_server: MotoServer) -> str:
    """An S3 store with digits 1 and 2, prod on 1 with 2 as a 10% canary, and staging on 1
    with 2 as a canary too."""
    bucket = f"maas-rollback-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/store"
    repo = Repository(open_store(uri))
    for _ in range(2):
        publish(repo, "digits", models.multi_io())
    repo.set_alias("digits", "prod", 1, canary=(2, 0.1))
    repo.set_alias("digits", "staging", 1, canary=(2, 0.5))
    return uri


@pytest.fixture
def logs(store: str, tmp_path: Any) -> Any:
    stream = io.StringIO()
    set_runtime(
        build_runtime(
            Settings(store=store, cache_dir=tmp_path / "cache"), telemetry=Telemetry(stream=stream)
        )
    )
    yield stream
    set_runtime(None)


def test_an_alarm_on_the_canary_rolls_its_aliases_back(store: str, logs: io.StringIO) -> None:
    result = rollback.handler(alarm_event(), LocalContext())
    assert result["action"] == "rolled back"
    assert result["watched"] == ["digits:2"]
    assert sorted(r["alias"] for r in result["rolled_back"]) == ["prod", "staging"]
    repo = Repository(open_store(store))
    assert repo.route("digits", "prod") == AliasRoute(1)
    ended = repo.alias_doc("digits", "prod")["ended"]
    assert ended["outcome"] == "rolled back" and ended["by"] == "alarm"
    assert ended["reason"].startswith("alarm maas-canary-digits-prod-errors: Threshold Crossed")
    assert '"message":"canary alarm"' in logs.getvalue()
    # the same event again (EventBridge delivers at least once): nothing left to do
    again = rollback.handler(alarm_event(), LocalContext())
    assert again["rolled_back"] == [] and again["action"].startswith("none")


def test_an_alarm_on_another_version_leaves_the_canary(store: str) -> None:
    event = alarm_event()
    for metric in event["detail"]["configuration"]["metrics"][1:]:
        metric["metricStat"]["metric"]["dimensions"]["version"] = "1"
    result = rollback.roll_back(Repository(open_store(store)), event)
    assert result["rolled_back"] == [] and result["watched"] == ["digits:1"]
    assert Repository(open_store(store)).route("digits", "prod") == AliasRoute(1, 2, 0.1)


@pytest.mark.parametrize(
    ("change", "action"),
    [
        (lambda e: e["detail"]["state"].update(value="OK"), "none: not an alarm going into ALARM"),
        (
            lambda e: e["detail"]["state"].update(value="INSUFFICIENT_DATA"),
            "none: not an alarm going into ALARM",
        ),
        (
            lambda e: e.update({"detail-type": "Scheduled Event"}),
            "none: not an alarm going into ALARM",
        ),
        (
            lambda e: e["detail"]["configuration"].update(metrics=[]),
            "none: the alarm watches no model version",
        ),
    ],
)
def test_other_events_change_nothing(store: str, change: Any, action: str) -> None:
    event = copy.deepcopy(alarm_event())
    change(event)
    result = rollback.roll_back(Repository(open_store(store)), event)
    assert result["action"] == action and result["rolled_back"] == []
    assert Repository(open_store(store)).route("digits", "prod") == AliasRoute(1, 2, 0.1)


def state_change(alarm: dict[str, Any], reason: str) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when `alarm` (as DescribeAlarms gives it) goes
    into ALARM: its metrics in the event's own shape (dimensions as a map)."""
    metrics = []
    for query in alarm["Metrics"]:
        item: dict[str, Any] = {"id": query["Id"], "returnData": query.get("ReturnData", True)}
        if "Expression" in query:
            item["expression"] = query["Expression"]
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            item["metricStat"] = {
                "metric": {
                    "namespace": metric["Namespace"],
                    "name": metric["MetricName"],
                    "dimensions": {d["Name"]: d["Value"] for d in metric["Dimensions"]},
                },
                "period": query["MetricStat"]["Period"],
                "stat": query["MetricStat"]["Stat"],
            }
        metrics.append(item)
    event = alarm_event()
    event["resources"] = [alarm["AlarmArn"]]
    event["detail"]["alarmName"] = alarm["AlarmName"]
    event["detail"]["state"]["reason"] = reason
    event["detail"]["configuration"] = {
        "description": alarm["AlarmDescription"],
        "metrics": metrics,
    }
    return event


def test_maas_alias_creates_the_alarms_and_their_event_rolls_back(
    store: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from model_build.cli import app

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_server.url)
    cli = CliRunner()
    ran = cli.invoke(
        app,
        ["alias", "digits", "prod", "1", "--canary", "2=10%", "--alarm-errors", "1",
         "--alarm-p99-ms", "250", "--store", store],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "alarm maas-canary-digits-prod-errors: in ALARM it rolls the canary back" in ran.stdout
    cloudwatch = boto3.client("cloudwatch")
    alarms = {
        a["AlarmName"]: a
        for a in cloudwatch.describe_alarms(AlarmNamePrefix="maas-canary-digits-prod-")[
            "MetricAlarms"
        ]
    }
    assert sorted(alarms) == ["maas-canary-digits-prod-errors", "maas-canary-digits-prod-p99"]
    p99 = alarms["maas-canary-digits-prod-p99"]
    assert p99["Threshold"] == 250 and p99["Metrics"][0]["MetricStat"]["Stat"] == "p99"
    # When the p99 alarm fires, its own event names the version: the canary is rolled back
    event = state_change(p99, "Threshold Crossed: 2 datapoints [412.0, 388.5] > 250.0")
    result = rollback.roll_back(Repository(open_store(store)), event)
    assert [r["alias"] for r in result["rolled_back"]] == ["prod", "staging"]
    doc = Repository(open_store(store)).alias_doc("digits", "prod")
    assert doc["ended"]["reason"] == (
        "alarm maas-canary-digits-prod-p99: Threshold Crossed: 2 datapoints [412.0, 388.5] > 250.0"
    )
    # A new canary, promoted by hand: its alarms go with it
    ran = cli.invoke(
        app,
        ["alias", "digits", "prod", "1", "--canary", "2=5%", "--alarm-errors", "2",
         "--store", store],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    promoted = cli.invoke(app, ["alias", "digits", "prod", "--promote", "--store", store])
    assert promoted.exit_code == 0, promoted.output
    assert "alarm maas-canary-digits-prod-errors deleted" in promoted.stdout
    assert "alarm maas-canary-digits-prod-p99 deleted" in promoted.stdout  # the earlier one's
    left = cloudwatch.describe_alarms(AlarmNamePrefix="maas-canary-digits-prod-")
    assert left["MetricAlarms"] == []


def test_alarms_need_a_canary_on_a_deployed_store(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from model_build.cli import app

    ran = CliRunner().invoke(
        app,
        ["alias", "digits", "prod", "1", "--canary", "2=10%", "--alarm-errors", "1",
         "--store", str(tmp_path / "local")],
    )  # fmt: skip
    assert ran.exit_code != 0 and "use them with --canary and an s3:// store" in ran.output
