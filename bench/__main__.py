"""`python -m bench` (or `make bench`): every serving layer as a ratio to raw onnxruntime, one run.

Models: the MLP (784-512-512-10) and a ResNet-18 (3x224x224), at batch 1 and 32. Layers: raw
`session.run`; the runner; the Lambda handler on a real API Gateway v2 event (JSON, and binary
tensors in a base64 body); HTTP through `maas serve` (JSON and binary); a naive Flask app serving
the same model. Then the telemetry's cost per request, HTTP throughput (maas serve vs Flask,
concurrency 8) and the function bundle's size. Results: bench/results/latest.json and
bench/results/bench.png (`--plot docs/bench.png` refreshes the docs' figure).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from rich.console import Console
from rich.table import Table

from bench.telemetry_cost import telemetry_cost
from bench.timing import Sample, measure_interleaved
from functions.api.handler import handle
from functions.core.codec import encode_binary
from functions.core.repository import Repository
from functions.core.runner import Runner
from functions.core.sessions import make_session
from functions.runtime import build_runtime
from functions.settings import Settings
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from functions.threads import cpu_budget
from model_build.demo import wait_ready
from model_build.inspect_onnx import manifest_for
from model_build.lambda_local import LocalContext, api_event
from model_build.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = LocalContext(timeout_seconds=900)  # one context, as a warm Lambda reuses its runtime
LIMIT = 512 * 1024 * 1024  # bodies beyond Lambda's 6 MB are measured too (flagged in the docs)


def bodies(name: str, x: np.ndarray) -> tuple[bytes, bytes, int]:
    """The same request as JSON, and with Triton's binary extension (outputs binary too)."""
    tensor = {"name": name, "shape": list(x.shape), "datatype": "FP32"}
    as_json = orjson.dumps(
        {"inputs": [{**tensor, "data": x.ravel()}]}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    blob = encode_binary(x)
    header = orjson.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}],
            "parameters": {"binary_data_output": True},
        }
    )
    return as_json, header + blob, len(header)


class Server:
    """A server subprocess on 127.0.0.1 and a keep-alive connection opened when first used."""

    def __init__(self, command: list[str], port: int, env: dict[str, str], ready: str) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_ready(port, self.proc, path=ready)
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        try:
            return self._post(path, body, headers)
        except (ConnectionError, http.client.RemoteDisconnected):
            # uvicorn drops idle keep-alives after 5 s: connect again (rare; outside a sample's
            # steady state, and the p50 does not see it)
            self.reset()
            return self._post(path, body, headers)

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.request("POST", path, body=body, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        assert response.status == 200, content[:300]
        return content

    def reset(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def stop(self) -> None:
        self.reset()
        self.proc.terminate()
        self.proc.wait(timeout=30)


@dataclass
class Case:
    """One model at one batch size, through every layer."""

    name: str
    input_name: str
    x: np.ndarray
    raw: ort.InferenceSession
    runner: Runner

    def layers(
        self, handler: Callable[..., Any], serve: Server, flask: Server
    ) -> dict[str, Callable[[], object]]:
        as_json, as_binary, header_len = bodies(self.input_name, self.x)
        path = f"/v2/models/{self.name}/infer"
        json_headers = {"content-type": "application/json"}
        binary_headers = {
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(header_len),
        }
        json_event = api_event(path, as_json, headers=json_headers)
        binary_event = api_event(path, as_binary, headers=binary_headers, binary=True)
        for event in (json_event, binary_event):
            assert handler(event, CONTEXT)["statusCode"] == 200
        feed = {self.input_name: self.x}
        inputs = [(self.input_name, self.x)]
        return {
            "raw session.run": lambda: self.raw.run(None, feed),
            "runner": lambda: self.runner.run(inputs),
            "lambda handler, JSON": lambda: handler(json_event, CONTEXT),
            "lambda handler, binary": lambda: handler(binary_event, CONTEXT),
            "HTTP maas serve, JSON": lambda: serve.post(path, as_json, json_headers),
            "HTTP maas serve, binary": lambda: serve.post(path, as_binary, binary_headers),
            "HTTP naive Flask, JSON": lambda: flask.post(path, as_json, json_headers),
        }

    def measure(
        self, handler: Callable[..., Any], serve: Server, flask: Server, seconds: float
    ) -> list[dict[str, Any]]:
        heavy = self.x.nbytes > 4_000_000
        layers = self.layers(handler, serve, flask)
        samples: dict[str, Sample] = measure_interleaved(
            layers, seconds=seconds * len(layers), min_calls=3 if heavy else 30
        )
        base = samples["raw session.run"].p50_us
        return [
            {
                "model": self.name,
                "batch": int(self.x.shape[0]),
                "layer": layer,
                "p50_us": round(s.p50_us, 1),
                "p99_us": round(s.p99_us, 1),
                "calls": s.calls,
                "ratio_to_raw": round(s.p50_us / base, 3),
            }
            for layer, s in samples.items()
        ]


def throughput(server: Server, path: str, body: bytes, *, clients: int, seconds: float) -> float:
    """Requests per second with `clients` keep-alive connections posting for `seconds`."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while time.perf_counter() < stop:
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def bundle_mb() -> float | None:
    """The API function's bundled asset, unzipped (the infrastructure's local bundling)."""
    try:
        from infra.bundling import asset_size, copy_functions, install_requirements
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        install_requirements(Path(tmp), "x86_64")
        copy_functions(Path(tmp))
        return round(asset_size(Path(tmp)) / 1e6, 1)


def run(
    seconds: float, batches: list[int], models: list[str], console: Console, threads: int
) -> dict[str, Any]:
    """Measure everything; return the results document."""
    from model_build.examples.mlp import build_mlp
    from model_build.examples.resnet import build_resnet18

    work = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    repo = Repository(LocalStore(work / "store"))
    builders = {
        "mlp": (build_mlp, "x", (784,)),
        "resnet18": (build_resnet18, "image", (3, 224, 224)),
    }
    artifacts: dict[str, bytes] = {}
    for name in models:
        with console.status(f"building {name}..."):
            artifacts[name] = builders[name][0]()
        repo.publish(manifest_for(artifacts[name], name=name)[0], artifacts[name])
        (work / f"{name}.onnx").write_bytes(artifacts[name])
    env = {
        **os.environ,
        "MAAS_STORE": str(work / "store"),
        "MAAS_MAX_BODY_BYTES": str(LIMIT),
        "MAAS_INTRA_OP_THREADS": str(threads),
    }
    # The handler's runtime, its log lines appended to a file: the write is on the path, as
    # on Lambda; what reads them there (Lambda's log shipper) is not this benchmark's to model.
    sink = (work / "requests.log").open("a")
    settings = Settings(
        store=str(work / "store"),
        cache_dir=work / "cache",
        max_body_bytes=LIMIT,
        intra_op_threads=threads,
    )
    runtime = build_runtime(settings, telemetry=Telemetry(stream=sink))
    registry = runtime.registry

    def handler(event: dict[str, Any], context: LocalContext) -> Any:
        return handle(runtime, event, context)  # type: ignore[arg-type]

    rows: list[dict[str, Any]] = []
    rps: dict[str, float] = {}
    cost: dict[str, Any] = {}
    for name in models:
        port, flask_port = free_port(), free_port()
        serve = Server(
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
            port,
            {**env, "MAAS_CACHE_DIR": str(work / "serve-cache")},
            "/v2/health/live",
        )
        flask = Server(
            [
                sys.executable,
                "-m",
                "bench.flask_baseline",
                "--model",
                str(work / f"{name}.onnx"),
                "--port",
                str(flask_port),
                "--threads",
                str(threads),
            ],
            flask_port,
            env,
            "/health",
        )
        try:
            raw = make_session(artifacts[name], threads)
            input_name, shape = builders[name][1], builders[name][2]
            for batch in batches:
                x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
                case = Case(name, input_name, x, raw, registry.runner(name, "latest"))
                with console.status(f"measuring {name} at batch {batch}..."):
                    rows += case.measure(handler, serve, flask, seconds)
            if name == "mlp":
                body = bodies(
                    "x", np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
                )[0]
                with console.status("telemetry's cost per request..."):
                    cost = telemetry_cost(runtime, body, seconds=max(1.0, seconds))
                with console.status("throughput: maas serve and Flask, 8 clients..."):
                    rps["maas serve"] = throughput(
                        serve,
                        "/v2/models/mlp/infer",
                        body,
                        clients=8,
                        seconds=max(2.0, seconds * 2),
                    )
                    rps["naive Flask"] = throughput(
                        flask,
                        "/v2/models/mlp/infer",
                        body,
                        clients=8,
                        seconds=max(2.0, seconds * 2),
                    )
        finally:
            serve.stop()
            flask.stop()
    sink.close()
    with console.status("bundling the function asset..."):
        bundle = bundle_mb()
    return {
        "meta": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "intra_op_threads": threads,
        },
        "rows": rows,
        "telemetry": cost,
        "throughput_rps": {k: round(v, 1) for k, v in rps.items()},
        "bundle_mb": bundle,
    }


def report(doc: dict[str, Any], console: Console) -> None:
    """Print the tables."""
    table = Table(
        title=f"per request vs raw onnxruntime ({doc['meta']['intra_op_threads']} intra-op threads)"
    )
    for column in ("model", "batch", "layer", "p50 µs", "p99 µs", "x raw"):
        table.add_column(column, justify="left" if column in ("model", "layer") else "right")
    for r in doc["rows"]:
        table.add_row(
            r["model"],
            str(r["batch"]),
            r["layer"],
            f"{r['p50_us']:.1f}",
            f"{r['p99_us']:.1f}",
            f"{r['ratio_to_raw']:.2f}",
        )
    console.print(table)
    rps = doc["throughput_rps"]
    if rps:
        ratio = rps["maas serve"] / rps["naive Flask"]
        console.print(
            f"throughput, MLP batch 1, 8 clients: maas serve {rps['maas serve']:.0f} req/s, "
            f"naive Flask {rps['naive Flask']:.0f} req/s ({ratio:.2f}x)"
        )
    cost = doc.get("telemetry")
    if cost:
        console.print(
            f"telemetry per request (MLP batch 1, Lambda handler): the request line alone "
            f"{cost['request_line_us']:.1f} µs; the handler {cost['handler_with_us']:.1f} µs with "
            f"it, {cost['handler_without_us']:.1f} µs without: +{cost['difference_us']:.1f} µs "
            f"(limit {cost['limit_us']:.1f} µs: 10 µs or 5% of the raw run's "
            f"{cost['raw_run_us']:.1f} µs)"
        )
    console.print(f"API function bundle: {doc['bundle_mb']} MB unzipped")


def plot(doc: dict[str, Any], path: Path) -> None:
    """Bars: each layer's p50 as a ratio to raw, per model and batch (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["model"], r["batch"]) for r in doc["rows"]})
    layers = [r["layer"] for r in doc["rows"] if (r["model"], r["batch"]) == groups[0]]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / len(layers)
    for i, layer in enumerate(layers):
        values = [
            next(
                r["ratio_to_raw"]
                for r in doc["rows"]
                if (r["model"], r["batch"], r["layer"]) == (*g, layer)
            )
            for g in groups
        ]
        ax.bar([g + i * width for g in range(len(groups))], values, width, label=layer)
    ax.set_xticks(
        [g + 0.4 - width / 2 for g in range(len(groups))], [f"{m} batch {b}" for m, b in groups]
    )
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("p50 latency / raw session.run (log)")
    ax.set_title("serverless-maas: each layer as a ratio to raw onnxruntime")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Parse options, run, write JSON and the plot."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="sampling time per layer")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument(
        "--models", nargs="+", default=["mlp", "resnet18"], choices=["mlp", "resnet18"]
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=cpu_budget().threads,
        help="onnxruntime intra-op threads everywhere (default: this machine's usable CPUs; "
        "1 is what an API function of the stack's default 2,048 MB gets)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "bench.png")
    args = parser.parse_args()
    console = Console()
    doc = run(args.seconds, args.batches, args.models, console, args.threads)
    report(doc, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    plot(doc, args.plot)
    console.print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
