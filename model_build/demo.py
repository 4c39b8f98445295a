"""`maas demo`: train, publish, serve over HTTP and through the Lambda handler, score."""

from __future__ import annotations

import http.client
import io
import subprocess
import sys
import time
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from functions.core.errors import MaasError
from functions.core.repository import Repository
from functions.runtime import build_runtime, set_runtime
from functions.settings import Settings
from functions.stores import open_store
from functions.telemetry import Telemetry
from model_build.build_cli import summary
from model_build.examples import EXAMPLES, Trained
from model_build.gate import Thresholds
from model_build.lambda_local import api_event, invoke_api, load_event
from model_build.loopback import free_port
from model_build.pipeline import build


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


def spawn_serve(
    store: str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`maas serve` in a child process on 127.0.0.1:`port`, ready to answer.

    Its request lines (stdout) are dropped; its errors (stderr) show unless `env` is given.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_build", "serve", "--store", store, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if env is not None else None,
    )
    wait_ready(port, proc)
    return proc


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0, path: str = "/v2/health/ready"
) -> None:
    """Poll `path` until the server answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MaasError(f"the server exited early with code {proc.returncode}")
        try:
            if request(port, "GET", path)[0] == 200:
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
    repo = Repository(open_store(store))
    console.rule("1. train, compress, validate against fp32, publish")
    built = {name: _build(name, mode, repo, console) for name, mode in PLAN}

    console.rule("2. serve over HTTP")
    port = port or free_port()
    proc = spawn_serve(store, port)
    try:
        console.print(f"maas serve is ready on http://127.0.0.1:{port}")
        expected_digits = _predict_v2(
            port=port, name="digits", inputs=built["digits"].eval_inputs, output="label"
        )
        scores = {
            "cnn": _cnn_over_http(port, built["cnn"], console),
            "digits": _digits_over_http(port, built["digits"], console),
            "text": _text_over_http(port, built["text"], console),
        }
        scores["transformer"], answers = _transformer_over_http(port, built["transformer"], console)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    console.print("server stopped")

    console.rule("3. through the Lambda handler, with events/ payloads")
    # The handler's runtime over the demo's store; its JSON log lines are kept, not printed.
    logs = io.StringIO()
    set_runtime(build_runtime(Settings(store=store), telemetry=Telemetry(stream=logs)))
    digits = built["digits"]
    labels = _predict_v2(port=None, name="digits", inputs=digits.eval_inputs, output="label")
    if not np.array_equal(labels, expected_digits):
        raise MaasError("the Lambda handler's digits labels differ from those served over HTTP")
    console.print(f"digits through the Lambda handler: {len(labels)} rows, same labels as HTTP")
    _through_lambda(digits.eval_inputs["pixels"][:5], labels[:5], console)
    _text_through_lambda(answers, console)
    line = next(r for r in reversed(logs.getvalue().splitlines()) if '"message":"request"' in r)
    console.print("the handler's log line for that request (also its EMF metrics):")
    console.print(line, soft_wrap=True, highlight=False)

    console.rule("4. results")
    _report(scores, console)


PLAN = (("digits", "none"), ("cnn", "int8-static"), ("text", "none"), ("transformer", "none"))


def _build(name: str, mode: str, repo: Repository, console: Console) -> Trained:
    with console.status(f"training {name}..."):
        trained = EXAMPLES[name].train(False, None)
    with console.status(f"building {name} ({mode}): optimize, quantize, gate, publish..."):
        result = build(
            trained, repo=repo, name=name, mode=mode, thresholds=Thresholds(), alias=["prod"]
        )
    console.print(summary(result))
    return trained


def _infer_body(inputs: dict[str, np.ndarray], output: str) -> bytes:
    tensors = []
    for name, array in inputs.items():
        datatype = "BYTES" if array.dtype.kind in "OUS" else "FP32"
        data = [str(v) for v in array.ravel()] if datatype == "BYTES" else array.ravel().tolist()
        tensors.append(
            {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}
        )
    return orjson.dumps({"id": "demo", "inputs": tensors, "outputs": [{"name": output}]})


def _predict_v2(
    *, port: int | None, name: str, inputs: dict[str, np.ndarray], output: str
) -> np.ndarray:
    """v2 infer over HTTP (port) or through the Lambda handler (port None)."""
    body = _infer_body(inputs, output)
    path = f"/v2/models/{name}/versions/prod/infer"
    if port is None:
        response = invoke_api(api_event(path, body))
        result = _expect(response["statusCode"], response["body"].encode(), f"{name} via Lambda")
    else:
        result = _expect(*request(port, "POST", path, body), f"{name} v2 infer")
    return np.asarray(result["outputs"][0]["data"]).reshape(result["outputs"][0]["shape"])


def _cnn_over_http(port: int, cnn: Trained, console: Console) -> tuple[float, int]:
    meta = _expect(*request(port, "GET", "/v2/models/cnn/versions/prod"), "cnn metadata")
    console.print(f"cnn: inputs {meta['inputs']}, version {meta['versions']} (int8-static)")
    logits = _predict_v2(port=port, name="cnn", inputs=cnn.eval_inputs, output="logits")
    assert cnn.eval_labels is not None
    accuracy = float((logits.argmax(axis=1) == cnn.eval_labels).mean())
    console.print(f"cnn: v2 infer scored {len(logits)} held-out images in one request")
    return accuracy, len(logits)


def _digits_over_http(port: int, digits: Trained, console: Console) -> tuple[float, int]:
    x = digits.eval_inputs["pixels"]
    labels = _predict_v2(port=port, name="digits", inputs=digits.eval_inputs, output="label")
    predict = orjson.dumps({"instances": x[:8].tolist()})
    v1 = _expect(*request(port, "POST", "/v1/models/digits:predict", predict), "v1 predict")
    v1_labels = [row["label"] for row in v1["predictions"]]
    if v1_labels != labels[:8].tolist():
        raise MaasError(f"v1 predict disagrees with v2 infer: {v1_labels} vs {labels[:8].tolist()}")
    console.print(f"digits: v2 infer on {len(labels)} rows; v1 predict first 8 {v1_labels} (same)")
    assert digits.eval_labels is not None
    return float((labels == digits.eval_labels).mean()), len(labels)


def _text_over_http(port: int, text: Trained, console: Console) -> tuple[float, int]:
    messages = [str(m) for m in text.eval_inputs["text"]]
    body = orjson.dumps({"instances": messages})
    result = _expect(*request(port, "POST", "/v1/models/text/versions/prod:predict", body), "text")
    predicted = [row["label"] for row in result["predictions"]]
    classes = text.source["classes"]
    assert text.eval_labels is not None
    truth = [classes[i] for i in text.eval_labels]
    for message, label in list(zip(messages, predicted, strict=True))[:3]:
        console.print(f"text: {message!r} -> {label}")
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])), len(truth)


def _transformer_over_http(
    port: int, trained: Trained, console: Console
) -> tuple[tuple[float, int], list[str]]:
    """Sentences in, labels out (the tokenizer runs in the graph); the score, and the labels of
    the sentences in events/apigw-v2-infer-text.json."""
    texts = trained.eval_inputs["text"]
    labels = _predict_v2(port=port, name="transformer", inputs={"text": texts}, output="label")
    classes = trained.source["classes"]
    assert trained.eval_labels is not None
    truth = np.asarray([classes[i] for i in trained.eval_labels])
    event = orjson.loads(load_event("apigw-v2-infer-text.json")["body"])
    sentences = event["inputs"][0]["data"]
    answered = _predict_v2(
        port=port, name="transformer", inputs={"text": np.asarray(sentences)}, output="label"
    )
    for sentence, label in zip(sentences, answered.tolist(), strict=True):
        console.print(f"transformer: {sentence!r} -> {label}")
    return (float(np.mean(labels == truth)), len(truth)), answered.tolist()


def _text_through_lambda(expected: list[str], console: Console) -> None:
    response = invoke_api(load_event("apigw-v2-infer-text.json"))
    result = _expect(response["statusCode"], response["body"].encode(), "the Lambda handler")
    labels = next(o["data"] for o in result["outputs"] if o["name"] == "label")
    console.print(f"apigw-v2-infer-text.json (3 sentences): labels {labels}")
    if labels != expected:
        raise MaasError(f"the Lambda handler's text labels {labels} differ from HTTP's {expected}")


def _through_lambda(x: np.ndarray, expected: np.ndarray, console: Console) -> None:
    for name in ("apigw-v2-health-ready.json", "apigw-v2-model-metadata.json"):
        response = invoke_api(load_event(name))
        console.print(f"{name}: {response['statusCode']} {response['body'][:80]}")
        if response["statusCode"] != 200:
            raise MaasError(f"the Lambda handler answered {name} with {response['statusCode']}")
    event = load_event("apigw-v2-infer.json")
    doc = orjson.loads(event["body"])
    doc["inputs"][0].update(shape=list(x.shape), data=x.tolist())
    response = invoke_api(api_event(event["rawPath"], orjson.dumps(doc)))
    result = _expect(response["statusCode"], response["body"].encode(), "the Lambda handler")
    got = result["outputs"][0]["data"]
    console.print(f"apigw-v2-infer.json (5 test rows): labels {got}, id {result['id']!r}")
    if got != expected.tolist():
        raise MaasError(f"the Lambda handler disagrees with HTTP: {got} vs {expected.tolist()}")
    response = invoke_api(load_event("apigw-v1-predict.json"))
    predictions = _expect(response["statusCode"], response["body"].encode(), "v1 predict event")
    labels = [row["label"] for row in predictions["predictions"]]
    console.print(f"apigw-v1-predict.json (dataset rows 0-2, true 0 1 2): labels {labels}")


def _report(scores: dict[str, tuple[float, int]], console: Console) -> None:
    table = Table(title="held-out accuracy, served over HTTP")
    for column in ("model", "artifact", "rows", "accuracy"):
        table.add_column(column)
    artifacts = dict(PLAN)
    for name, (accuracy, rows) in scores.items():
        table.add_row(name, artifacts[name], str(rows), f"{accuracy:.4f}")
    console.print(table)
    accuracy, rows = scores["cnn"]
    console.print(
        f"[bold]accuracy over HTTP on {rows} held-out digits: {accuracy:.4f}[/] (cnn, int8-static)"
    )
