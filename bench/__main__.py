"""`python -m bench` (or `make bench`): raw onnxruntime, runner, Lambda handler, HTTP, side by side.

Every figure is measured in this one process run and printed as a ratio to raw `session.run`
on the same model, batch and thread settings. Results also go to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import importlib
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from rich.console import Console
from rich.table import Table

from bench.timing import Sample, measure
from functions.core.codec import encode_binary
from functions.core.repository import Repository
from functions.core.runner import Runner
from functions.core.sessions import usable_cpus
from functions.stores import LocalStore
from model_build.demo import free_port, wait_ready
from model_build.examples.digits import train_digits
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import LocalContext

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "events" / "apigw-v2-infer.json"
CONTEXT = LocalContext(timeout_seconds=900)  # one context, as a warm Lambda reuses its runtime


def _event(path: str, body: bytes, headers: dict[str, str], binary: bool) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(EVENT.read_bytes())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["headers"].update(headers, **{"content-length": str(len(body))})
    event["body"] = base64.b64encode(body).decode() if binary else body.decode()
    event["isBase64Encoded"] = binary
    return event


def _bodies(name: str, x: np.ndarray) -> tuple[bytes, bytes, int]:
    tensor = {"name": name, "shape": list(x.shape), "datatype": "FP32"}
    as_json = orjson.dumps({"inputs": [{**tensor, "data": x.ravel().tolist()}]})
    blob = encode_binary(x)
    header = orjson.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}],
            "parameters": {"binary_data_output": True},
        }
    )
    return as_json, header + blob, len(header)


@dataclass
class Case:
    """One model at one batch size, measured through every layer."""

    name: str
    input_name: str
    x: np.ndarray
    raw: ort.InferenceSession
    runner: Runner

    def measure(self, handler: Any, port: int, seconds: float) -> list[dict[str, Any]]:
        """Time every layer; return one row per layer with its ratio to raw."""
        as_json, as_binary, header_len = _bodies(self.input_name, self.x)
        path = f"/v2/models/{self.name}/infer"
        json_event = _event(path, as_json, {"content-type": "application/json"}, False)
        binary_headers = {
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(header_len),
        }
        binary_event = _event(path, as_binary, binary_headers, True)
        feed = {self.input_name: self.x}
        inputs = [(self.input_name, self.x)]

        conns: list[http.client.HTTPConnection] = []

        def over_http() -> bytes:
            if not conns:  # opened when this layer starts: uvicorn drops idle keep-alives after 5 s
                conns.append(http.client.HTTPConnection("127.0.0.1", port, timeout=30))
            conn = conns[0]
            conn.request("POST", path, body=as_json, headers={"content-type": "application/json"})
            response = conn.getresponse()
            content = response.read()
            assert response.status == 200, content
            return content

        layers = {
            "raw session.run": lambda: self.raw.run(None, feed),
            "runner": lambda: self.runner.run(inputs),
            "lambda handler (JSON)": lambda: handler(json_event, CONTEXT),
            "lambda handler (binary)": lambda: handler(binary_event, CONTEXT),
            "HTTP maas serve (JSON)": over_http,
        }
        for event in (json_event, binary_event):
            assert handler(event, CONTEXT)["statusCode"] == 200
        samples: dict[str, Sample] = {k: measure(f, seconds=seconds) for k, f in layers.items()}
        for conn in conns:
            conn.close()
        base = samples["raw session.run"].p50_us
        return [
            {
                "model": self.name,
                "batch": int(self.x.shape[0]),
                "layer": layer,
                "p50_us": round(sample.p50_us, 1),
                "p99_us": round(sample.p99_us, 1),
                "calls": sample.calls,
                "ratio_to_raw": round(sample.p50_us / base, 2),
            }
            for layer, sample in samples.items()
        ]


def run(seconds: float, batches: list[int]) -> list[dict[str, Any]]:
    """Measure every layer for every model and batch; return the rows."""
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    repo = Repository(LocalStore(work / "store"))
    digits = train_digits()
    models = {
        "digits": (digits.onnx_bytes, "pixels", digits.x_test),
        "mlp": (build_mlp(), "x", None),
    }
    for name, (artifact, *_rest) in models.items():
        repo.publish(manifest_for(artifact, name=name)[0], artifact)
    threads = usable_cpus()
    os.environ.update(MAAS_STORE=str(work / "store"), MAAS_CACHE_DIR=str(work / "cache"))
    handler_module = importlib.import_module("functions.api.handler")
    handler, registry = handler_module.handler, handler_module.registry
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_build",
            "serve",
            "--store",
            str(work / "store"),
            "--port",
            str(port),
        ],
        env={**os.environ, "MAAS_CACHE_DIR": str(work / "serve-cache")},
    )
    rows: list[dict[str, Any]] = []
    try:
        wait_ready(port, server)
        for name, (artifact, input_name, data) in models.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            raw_session = ort.InferenceSession(
                artifact, options, providers=["CPUExecutionProvider"]
            )
            for batch in batches:
                if data is None:
                    x = (
                        np.random.default_rng(batch)
                        .standard_normal((batch, 784))
                        .astype(np.float32)
                    )
                else:
                    x = np.ascontiguousarray(data[:batch])
                case = Case(name, input_name, x, raw_session, registry.runner(name, "latest"))
                rows += case.measure(handler, port, seconds)
                console.print(f"measured {name} at batch {batch}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    _print(console, rows, threads)
    return rows


def _print(console: Console, rows: list[dict[str, Any]], threads: int) -> None:
    table = Table(
        title=f"serving overhead vs raw onnxruntime ({threads} intra-op threads, p50 ratio)"
    )
    for column in ("model", "batch", "layer", "p50 µs", "p99 µs", "x raw"):
        table.add_column(column, justify="right" if column not in ("model", "layer") else "left")
    for row in rows:
        table.add_row(
            row["model"],
            str(row["batch"]),
            row["layer"],
            f"{row['p50_us']:.1f}",
            f"{row['p99_us']:.1f}",
            f"{row['ratio_to_raw']:.2f}",
        )
    console.print(table)


def main() -> None:
    """Parse options, run, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="sampling time per layer")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    rows = run(args.seconds, args.batches)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "cpus": usable_cpus(),
    }
    args.out.write_bytes(orjson.dumps({"meta": meta, "rows": rows}, option=orjson.OPT_INDENT_2))
    Console().print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
