"""Logs and metrics: one JSON line per request that is also a valid EMF document; events for cold
starts and model loads; the same shape on the Lambda handler and `maas serve`."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from functions.api.handler import handle
from functions.runtime import Runtime
from functions.telemetry import Telemetry
from model_build.lambda_local import LocalContext, api_event, load_event
from tests.conftest import LiveServer, runtime_for, settings_for

NAMESPACE = "serverless-maas"
REQUEST_METRICS = {"Requests": "Count", "Latency": "Milliseconds", "ClientErrors": "Count"}
REQUEST_METRICS["ServerErrors"] = "Count"


def check_emf(line: dict[str, Any]) -> dict[str, str]:
    """Assert `line` is an EMF document CloudWatch accepts; return its metrics' units by name.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    """
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_700_000_000_000
    units: dict[str, str] = {}
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == NAMESPACE
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for name in dimension_set:  # every dimension is a top-level string
                assert isinstance(line[name], str) and line[name], name
        for metric in directive["Metrics"]:
            value = line[metric["Name"]]  # every metric's value is at the top level
            values = value if isinstance(value, list) else [value]
            assert values and all(isinstance(v, int | float) for v in values), metric
            units[metric["Name"]] = metric["Unit"]
    return units


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def observed(served_store: Path, tmp_path: Path) -> tuple[Runtime, io.StringIO]:
    stream = io.StringIO()
    settings = settings_for(str(served_store), tmp_path / "cache")
    return runtime_for(settings, stream), stream


def test_one_request_line_that_is_also_its_metrics(
    observed: tuple[Runtime, io.StringIO],
) -> None:
    # Given a fresh runtime, when the handler answers the sample infer event twice
    runtime, stream = observed
    event = load_event("apigw-v2-infer.json")
    context = LocalContext(function_name="maas-api")
    first = handle(runtime, event, context)  # type: ignore[arg-type]
    handle(runtime, event, context)  # type: ignore[arg-type]
    assert first["statusCode"] == 200
    found = lines(stream)
    requests = [line for line in found if line["message"] == "request"]
    # Then there is one line per request, saying who asked for what and how it went
    assert len(requests) == 2
    line = requests[0]
    assert line["level"] == "INFO" and line["service"] == "maas"
    assert line["request_id"] == event["requestContext"]["requestId"]
    assert line["function_name"] == "maas-api"
    assert (line["protocol"], line["model"], line["version"], line["ref"]) == (
        "v2",
        "digits",
        "1",
        "latest",
    )
    assert line["status"] == 200 and line["latency_ms"] > 0
    assert [r["cold_start"] for r in requests] == [True, False]
    # And it is an EMF document: count, latency and errors per model and version
    assert check_emf(line) == REQUEST_METRICS
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["model", "version", "service"]]
    assert (line["Requests"], line["ClientErrors"], line["ServerErrors"]) == (1, 0, 0)
    assert line["Latency"] == line["latency_ms"]
    # And the cold start and the model load are events of their own, with their metrics
    (cold,) = [line for line in found if line["message"] == "cold start"]
    assert check_emf(cold) == {"ColdStart": "Count"}
    (load,) = [line for line in found if line["message"] == "model loaded"]
    assert (load["model"], load["version"], load["cached"]) == ("digits", "1", False)
    assert load["request_id"] == event["requestContext"]["requestId"]
    # a local store: its files verified in place, none downloaded
    assert (load["in_place"], load["download_ms"]) == (True, 0)
    assert load["verify_ms"] > 0 and load["session_ms"] > 0
    # And every line's timestamp is RFC 3339 in UTC: Lambda's JSON log filter needs it
    for each in found:
        stamp = datetime.fromisoformat(each["timestamp"])
        assert stamp.utcoffset() == timedelta(0) and "T" in each["timestamp"]
    assert check_emf(load) == {
        "ModelLoads": "Count",
        "ModelLoadTime": "Milliseconds",
        "DownloadTime": "Milliseconds",
        "VerifyTime": "Milliseconds",
        "SessionTime": "Milliseconds",
    }


def test_errors_are_counted_by_status_class(observed: tuple[Runtime, io.StringIO]) -> None:
    runtime, stream = observed
    body = load_event("apigw-v2-infer.json")["body"].encode()
    for path, payload in (
        ("/v2/models/nope/infer", body),  # 404, never resolved to a version
        ("/v2/models/digits/infer", b"{broken"),  # 400 for digits
    ):
        handle(runtime, api_event(path, payload), LocalContext())  # type: ignore[arg-type]
    missing, broken = [line for line in lines(stream) if line["message"] == "request"]
    assert (missing["status"], missing["model"], missing["version"]) == (404, "-", "-")
    assert missing["requested_model"] == "nope"
    assert missing["error"] == "model 'nope' is not published"
    assert (missing["ClientErrors"], missing["ServerErrors"]) == (1, 0)
    assert (broken["status"], broken["ClientErrors"]) == (400, 1)
    assert broken["error"].startswith("request body is not valid JSON")
    for line in (missing, broken):
        check_emf(line)


def test_maas_serve_writes_the_same_lines(observed: tuple[Runtime, io.StringIO]) -> None:
    runtime, stream = observed
    body = load_event("apigw-v2-infer.json")["body"].encode()
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/v2/models/digits/infer", content=body).status_code == 200
        assert client.get("/v2/models/digits", headers={"x-request-id": "r-7"}).status_code == 200
    request, other = [line for line in lines(stream) if line["message"] == "request"]
    assert (request["model"], request["status"]) == ("digits", 200)
    assert request["request_id"]  # generated when the client sends none
    check_emf(request)
    # Other requests get a line too (no metrics: they run no model)
    assert (other["path"], other["status"], other["request_id"]) == (
        "/v2/models/digits",
        200,
        "r-7",
    )
    assert "_aws" not in other


def test_metrics_can_be_switched_off(
    served_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "maas-api")
    stream = io.StringIO()
    settings = settings_for(str(served_store), tmp_path / "cache")
    runtime = runtime_for(settings, stream)
    handle(runtime, load_event("apigw-v2-infer.json"), LocalContext())  # type: ignore[arg-type]
    (request,) = [line for line in lines(stream) if line["message"] == "request"]
    assert request["service"] == "maas-api" and request["status"] == 200
    assert "_aws" not in request and "Requests" not in request


def test_the_namespace_follows_powertools_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "elsewhere")
    stream = io.StringIO()
    telemetry = Telemetry(stream=stream)
    telemetry.request(
        protocol="v1", name="m", ref="2", version=2, status=503, seconds=0.01, request_id=None
    )
    (line,) = [line for line in lines(stream) if line["message"] == "request"]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "elsewhere"
    assert (line["level"], line["ServerErrors"], line["Latency"]) == ("ERROR", 1, 10.0)


@pytest.mark.parametrize("metrics", [True, False])
@pytest.mark.parametrize("lambda_context", [True, False])
def test_the_fast_request_line_is_the_document_serialized(
    monkeypatch: pytest.MonkeyPatch, metrics: bool, lambda_context: bool
) -> None:
    # Given a warm telemetry (the first line takes the general path) at a fixed time
    stream = io.StringIO()
    telemetry = Telemetry(stream=stream, metrics=metrics)
    if lambda_context:
        telemetry.lambda_context(LocalContext(aws_request_id="inv-1"))
    monkeypatch.setattr("functions.telemetry.time.time", lambda: 1796300000.1234)
    args: dict[str, Any] = {"protocol": "v1", "name": "m%s", "ref": "prod", "version": 3}
    telemetry.request(**args, status=200, seconds=0.001, request_id="warm")
    stream.seek(0)
    stream.truncate()
    # When a request line is written from the route's template
    telemetry.request(**args, status=200, seconds=0.0012345678, request_id='q"1')
    # Then it is exactly the document the general path builds for the same values
    (line,) = lines(stream)
    expected = telemetry._document(
        key=("v1", "m%s", "prod", 3, 200),
        timestamp="2026-12-03T12:13:20.123+00:00",
        request_id='q"1',
        latency_ms=1.235,
        invocation="inv-1" if lambda_context else None,
        millis=1796300000123,
        latency=1.235,
    )
    assert line == orjson.loads(orjson.dumps(expected))
    assert ("_aws" in line) is metrics
