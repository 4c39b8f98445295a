"""`python -m bench.profile_serve`: where `maas serve`'s time goes under load, socket to reply.

Publishes the MLP (784-512-512-10) to a temporary store, starts `maas serve`, drives it with
wrk (MLP batch 1, JSON, `--clients` keep-alive connections) and samples the server's Python
stacks with py-spy meanwhile (a sampling profiler attached from outside: the server runs
unmodified). Each sample is attributed to the innermost frame that belongs to a known part
(onnxruntime's run, the request parser, the reply encoder, the request line, the batcher, our
middleware, uvicorn's HTTP protocol, the event loop); the shares are printed and written to
bench/results/profile_serve.json. Needs wrk and py-spy (the dev extra) on this machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.demo import spawn_serve
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for
from model_build.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
# (part, test on a frame "function (file:line)"), innermost match wins; first listed first.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("onnxruntime session.run", ("onnxruntime",)),
    ("parse the request (simdjson, checks)", ("parse_infer", "jsondoc.py", "codec.py")),
    ("encode the reply", ("encode_infer_response",)),
    ("request line and metrics", ("telemetry.py",)),
    ("batcher", ("batching.py",)),
    ("middleware, entry point, runner", ("asgi.py", "inference.py", "dataplane.py", "runner.py")),
    ("uvicorn: HTTP parsing, socket writes", ("uvicorn",)),
    ("event loop (uvloop, asyncio)", ("asyncio", "uvloop")),
]
LUA = """
wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
"""


def attribute(raw: str) -> dict[str, float]:
    """Shares of py-spy's raw (collapsed) samples by part, in percent."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        part = "other"
        for frame in reversed(stack.split(";")):
            part = next((name for name, keys in PARTS if any(k in frame for k in keys)), "")
            if part:
                break
        counts[part or "other"] += int(n)
    total = sum(counts.values()) or 1
    return {part: round(100 * n / total, 1) for part, n in counts.most_common()}


def main() -> None:
    """Serve, load, sample, print."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_serve", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/profile_serve.json")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None or shutil.which("wrk") is None:
        sys.exit("needs py-spy (pip install py-spy) and wrk (Debian's wrk package)")
    with tempfile.TemporaryDirectory(prefix="maas-profile-") as tmp:
        work = Path(tmp)
        model = build_mlp()
        Repository(LocalStore(work / "store")).publish(manifest_for(model, name="mlp")[0], model)
        x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
        tensor = {"name": "x", "shape": [1, 784], "datatype": "FP32", "data": x.ravel()}
        body = orjson.dumps({"inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY)
        (work / "body.json").write_bytes(body)
        (work / "post.lua").write_text(LUA.format(body=work / "body.json"))
        port = free_port()
        env = {**os.environ, "MAAS_CACHE_DIR": str(work / "cache")}
        server = spawn_serve(str(work / "store"), port, env)
        url = f"http://127.0.0.1:{port}/v2/models/mlp/infer"
        try:
            threads = str(min(2, args.clients))
            wrk = ["wrk", "-t", threads, "-c", str(args.clients), "-s", str(work / "post.lua"), url]
            subprocess.run([*wrk, "-d", "2s"], check=True, capture_output=True)  # warm up
            load = subprocess.Popen([*wrk, "-d", f"{args.seconds + 2}s"], stdout=subprocess.PIPE)
            out = work / "raw.txt"
            record = [spy, "record", "-p", str(server.pid), "-d", str(args.seconds), "-r", "400"]
            record += ["-f", "raw", "-o", str(out), "--nonblocking"]
            subprocess.run(record, check=True, capture_output=True)
            summary = load.communicate()[0].decode()
        finally:
            server.terminate()
            server.wait(timeout=30)
        shares = attribute(out.read_text())
    table = Table(title=f"maas serve, MLP batch 1 JSON, {args.clients} clients: busy samples")
    table.add_column("part")
    table.add_column("%", justify="right")
    for part, share in shares.items():
        table.add_row(part, f"{share:.1f}")
    console = Console()
    console.print(table)
    rate = next((ln for ln in summary.splitlines() if ln.startswith("Requests/sec")), "")
    console.print(rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"clients": args.clients, "shares": shares, "wrk": rate}
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
