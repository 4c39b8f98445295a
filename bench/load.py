"""`python -m bench.load`: a bounded load run against `maas serve` on 127.0.0.1.

A fixed number of requests at a fixed concurrency, mixed models and formats with bad requests
mixed in, each with the status it must get. Reports unexpected answers, p50/p99, throughput, and
the server's resident memory and open file descriptors before and after (after a warm-up pass).
"""

from __future__ import annotations

import argparse
import http.client
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console

from bench.__main__ import bodies
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.demo import spawn_serve
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
Request = tuple[str, bytes, dict[str, str], int]


def requests_mix() -> list[Request]:
    """Good and bad requests for two models, JSON and binary, with their expected statuses."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 784)).astype(np.float32)
    as_json, as_binary, header = bodies("x", x)
    json_h = {"content-type": "application/json"}
    bin_h = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(header),
    }
    small = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 784], "datatype": "FP32", "data": [0.5] * 784}]}
    )
    return [
        ("/v2/models/mlp/infer", as_json, json_h, 200),
        ("/v2/models/mlp/versions/prod/infer", as_binary, bin_h, 200),
        ("/v2/models/mlp/infer", small, json_h, 200),
        ("/v1/models/mlp:predict", orjson.dumps({"instances": x[:2].tolist()}), json_h, 200),
        ("/v2/models/mlp2/infer", small, json_h, 200),
        ("/v2/models/mlp/infer", b"{broken", json_h, 400),
        ("/v2/models/nope/infer", small, json_h, 404),
        ("/v2/models/mlp/infer", small.replace(b"[1,784]", b"[2,784]"), json_h, 400),
        ("/v2/models/mlp/versions/9/infer", small, json_h, 404),
    ]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _drive(
    port: int, mix: list[Request], total: int, clients: int
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local: list[float] = []
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            path, body, headers, expected = mix[index % len(mix)]
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            local.append(time.perf_counter() - start)
            if response.status != expected:
                with lock:
                    unexpected.append(f"{path}: {response.status}, expected {expected}")
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, unexpected


def run(total: int, clients: int) -> dict[str, Any]:
    """Serve two models, warm up, then run `total` requests at `clients` concurrency."""
    work = Path(tempfile.mkdtemp(prefix="maas-load-"))
    repo = Repository(LocalStore(work / "store"))
    model = build_mlp()
    for name in ("mlp", "mlp2"):
        published = repo.publish(manifest_for(model, name=name)[0], model)
        repo.set_alias(name, "prod", published.version)
    port = free_port()
    env = {**os.environ, "MAAS_CACHE_DIR": str(work / "cache")}
    proc = spawn_serve(str(work / "store"), port, env)
    try:
        mix = requests_mix()
        _drive(port, mix, len(mix) * 20, clients)  # warm-up: models loaded, pools sized
        rss_before, fds_before = _rss_kb(proc.pid), _fds(proc.pid)
        start = time.perf_counter()
        latencies, unexpected = _drive(port, mix, total, clients)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)  # let closed connections go
        rss_after, fds_after = _rss_kb(proc.pid), _fds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    values = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "concurrency": clients,
        "unexpected": len(unexpected),
        "unexpected_examples": unexpected[:5],
        "bad_requests_share": round(sum(1 for r in mix if r[3] != 200) / len(mix), 3),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "rss_kb_before": rss_before,
        "rss_kb_after": rss_after,
        "rss_drift": round((rss_after - rss_before) / rss_before, 4),
        "fds_before": fds_before,
        "fds_after": fds_after,
    }


def main() -> None:
    """Parse options, run, print and write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    doc = run(args.requests, args.concurrency)
    Console().print_json(orjson.dumps(doc).decode())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
