"""Tracing on (as the CDK's maas:tracing sets it): X-Ray subsegments for each request and each
model load reach the X-Ray daemon's address, here a UDP socket on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import ROOT

# Lambda with active tracing: the SDK reads the trace header from the environment, per invocation
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
INVOKE = """
from model_build.lambda_local import invoke_api, load_event
print(invoke_api(load_event("apigw-v2-infer.json"))["statusCode"])
"""


def test_requests_and_model_loads_are_traced(served_store: Path, tmp_path: Path) -> None:
    # Given an X-Ray daemon address that is a UDP socket on loopback
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(10)
        env = {
            **os.environ,
            "LAMBDA_TASK_ROOT": str(tmp_path),  # the X-Ray SDK and Powertools: "in Lambda"
            "AWS_LAMBDA_FUNCTION_NAME": "maas-api",
            "_X_AMZN_TRACE_ID": TRACE,
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "POWERTOOLS_TRACE_DISABLED": "false",
            "POWERTOOLS_SERVICE_NAME": "maas-api",
            "MAAS_STORE": str(served_store),
            "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        }
        # When the API handler answers an infer event in that process
        result = subprocess.run(
            [sys.executable, "-c", INVOKE],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "200"
        segments: list[dict[str, Any]] = []
        while len(segments) < 2:
            header, _, document = daemon.recv(65536).partition(b"\n")
            assert orjson.loads(header) == {"format": "json", "version": 1}
            segments.append(orjson.loads(document))
    # Then the inference and the model load it caused are subsegments of the invocation's trace
    by_name = {s["name"]: s for s in segments}
    inference, load = by_name["## inference"], by_name["## model load"]
    assert inference["trace_id"] == load["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert inference["parent_id"] == "53995c3f42cd8ad8"  # Lambda's segment
    assert load["parent_id"] == inference["id"]
    assert inference["annotations"] == {"model": "digits", "ref": "latest", "version": 1}
    assert load["annotations"] == {"model": "digits", "version": 1}
    assert inference["end_time"] >= load["end_time"] > load["start_time"]
