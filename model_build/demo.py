"""`maas demo`: train, publish, serve over HTTP and through the Lambda handler, score."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from functions.core.errors import MaasError
from functions.core.repository import Repository
from functions.stores import open_store
from model_build.examples.digits import train_digits
from model_build.inspect_onnx import manifest_for

EVENTS = Path(__file__).resolve().parent.parent / "events"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request to the local server."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll /v2/health/ready until the server answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MaasError(f"the server exited early with code {proc.returncode}")
        try:
            if request(port, "GET", "/v2/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise MaasError(f"the server on port {port} was not ready after {timeout:.0f}s")


def _expect(status: int, body: bytes, what: str) -> Any:
    if status != 200:
        raise MaasError(f"{what} answered {status}: {body.decode(errors='replace')}")
    return orjson.loads(body)


def run_demo(*, store: str, port: int, console: Console) -> None:
    """The main job, end to end; raises MaasError on any failure."""
    console.rule("1. train and export")
    trained = train_digits()
    console.print(f"digits classifier: scikit-learn test accuracy {trained.accuracy:.4f}")

    console.rule("2. publish")
    repo = Repository(open_store(store))
    manifest, _ = manifest_for(
        trained.onnx_bytes,
        name="digits",
        source=trained.source,
        metrics={"accuracy": round(trained.accuracy, 4)},
        labels={"example": "digits"},
    )
    final = repo.publish(manifest, trained.onnx_bytes)
    repo.set_alias("digits", "prod", final.version)
    console.print(
        f"published digits version {final.version} ({final.size_bytes} bytes, sha256 "
        f"{final.sha256[:12]}...) to {repo.store.uri}; alias prod -> {final.version}"
    )

    console.rule("3. serve over HTTP")
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_build", "serve", "--store", store, "--port", str(port)]
    )
    try:
        wait_ready(port, proc)
        console.print(f"maas serve is ready on http://127.0.0.1:{port}")
        labels = _over_http(port, trained.x_test, final.version, console)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    console.print("server stopped")

    console.rule("4. through the Lambda handler")
    _through_lambda(store, trained.x_test[:5], labels[:5], console)

    console.rule("5. results")
    _report(labels, trained.y_test, console)


def _over_http(port: int, x: np.ndarray, version: int, console: Console) -> np.ndarray:
    meta = _expect(*request(port, "GET", "/v2/models/digits/versions/prod"), "model metadata")
    console.print(
        f"metadata: inputs {meta['inputs']}, outputs {[o['name'] for o in meta['outputs']]}"
    )
    body = orjson.dumps(
        {
            "id": "demo",
            "inputs": [
                {
                    "name": "pixels",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.ravel().tolist(),
                }
            ],
            "outputs": [{"name": "label"}],
        }
    )
    result = _expect(
        *request(port, "POST", "/v2/models/digits/versions/prod/infer", body), "v2 infer"
    )
    labels = np.asarray(result["outputs"][0]["data"], dtype=np.int64)
    console.print(f"v2 infer: {len(labels)} rows scored by version {result['model_version']}")
    predict = orjson.dumps({"instances": x[:8].tolist()})
    v1 = _expect(
        *request(port, "POST", f"/v1/models/digits/versions/{version}:predict", predict),
        "v1 predict",
    )
    v1_labels = [row["label"] for row in v1["predictions"]]
    if v1_labels != labels[:8].tolist():
        raise MaasError(f"v1 predict disagrees with v2 infer: {v1_labels} vs {labels[:8].tolist()}")
    console.print(f"v1 predict: first 8 labels {v1_labels} (same as v2)")
    return labels


def _through_lambda(store: str, x: np.ndarray, expected: np.ndarray, console: Console) -> None:
    os.environ["MAAS_STORE"] = store
    from model_build.lambda_local import invoke_api

    for name in ("apigw-v2-health-ready.json", "apigw-v2-model-metadata.json"):
        response = invoke_api(orjson.loads((EVENTS / name).read_bytes()))
        console.print(f"{name}: {response['statusCode']} {response['body'][:80]}")
        if response["statusCode"] != 200:
            raise MaasError(f"the Lambda handler answered {name} with {response['statusCode']}")
    event = orjson.loads((EVENTS / "apigw-v2-infer.json").read_bytes())
    doc = orjson.loads(event["body"])
    doc["inputs"][0].update(shape=list(x.shape), data=x.tolist())
    event["body"] = orjson.dumps(doc).decode()
    event["headers"]["content-length"] = str(len(event["body"]))
    response = invoke_api(event)
    result = _expect(response["statusCode"], response["body"].encode(), "the Lambda handler")
    got = result["outputs"][0]["data"]
    console.print(f"apigw-v2-infer.json (5 test rows): labels {got}, id {result['id']!r}")
    if got != expected.tolist():
        raise MaasError(f"the Lambda handler disagrees with HTTP: {got} vs {expected.tolist()}")
    event = orjson.loads((EVENTS / "apigw-v1-predict.json").read_bytes())
    response = invoke_api(event)
    predictions = _expect(response["statusCode"], response["body"].encode(), "v1 predict event")
    labels = [row["label"] for row in predictions["predictions"]]
    console.print(f"apigw-v1-predict.json (dataset rows 0-2, true 0 1 2): labels {labels}")


def _report(labels: np.ndarray, truth: np.ndarray, console: Console) -> None:
    table = Table(title="first 15 held-out digits")
    table.add_column("row", justify="right")
    table.add_column("true")
    table.add_column("predicted")
    table.add_column("")
    for i in range(15):
        ok = labels[i] == truth[i]
        table.add_row(str(i), str(truth[i]), str(labels[i]), "[green]ok[/]" if ok else "[red]x[/]")
    console.print(table)
    accuracy = float((labels == truth).mean())
    console.print(
        f"[bold]accuracy over HTTP on {len(truth)} held-out digits: {accuracy:.4f}[/] "
        f"({int((labels == truth).sum())}/{len(truth)})"
    )
