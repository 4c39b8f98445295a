"""`python -m bench.peers`: maas serve side by side with MLServer, KServe and a naive Flask app.

The same ONNX models behind each server on 127.0.0.1 and the same Open Inference Protocol v2
requests: throughput and p50/p99 at 1 and 8 clients (wrk when on PATH, else Python threads), the
MLP at 32 clients on maas serve with adaptive batching on (its default) and off, cold start
(spawn until the first 200 to the infer request, polled every 20 ms) and the resident memory of
the server's process tree after the load. One server runs at a time. Its outputs are checked
against raw onnxruntime first: a server that differs is reported failed and its figures are not
counted, nor are a run's with any error (wrk counts 4xx/5xx, connect, read, write and timeout
errors). MLServer and KServe run in their own pinned virtual environments under .maas/peers/,
created on first use (never the project's), through the adapters in bench/peer_servers/.
Results: bench/results/peers.json; `--plot PATH` draws req/s per server and case.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from rich.console import Console
from rich.table import Table

from bench.__main__ import bodies
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.inspect_onnx import manifest_for
from model_build.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
ORT = ort.__version__
ERRORS = ("status", "connect", "read", "write", "timeout")
MAAS_ENV = {"MAAS_INTRA_OP_THREADS": "{threads}", "MAAS_CACHE_DIR": "{cache}"}  # a fresh cache


@dataclass(frozen=True)
class Peer:
    """A server as benchmarked: its command and the environment it adds ({py}, {venv}, {onnx},
    {model}, {port}, {port2}, {threads}, {store}, {cache}, {adapters}, {folder} filled in), its
    pinned venv (none: the project's), whether it takes Triton's binary tensor extension, and its
    rows: "all" cases, "all+batching" (and MLP batch 1 at --batching-clients), or "batching"."""

    label: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    pins: tuple[str, ...] = ()
    binary: bool = False
    rows: str = "all"


MAAS = ("{py}", "-m", "model_build", "serve", "--store", "{store}", "--port", "{port}")
SERVERS: dict[str, Peer] = {
    "maas": Peer("maas serve", MAAS, MAAS_ENV, binary=True, rows="all+batching"),
    "maas-unbatched": Peer(
        "maas serve, batching off",
        MAAS,
        {**MAAS_ENV, "MAAS_SERVE_BATCHING": "false"},
        rows="batching",
    ),
    "mlserver": Peer(
        "MLServer 1.7.1",
        ("{venv}/bin/mlserver", "start", "{folder}"),
        {"PYTHONPATH": "{adapters}"},
        ("mlserver==1.7.1", f"onnxruntime=={ORT}"),
    ),
    "kserve": Peer(
        "KServe 0.21.0",
        ("{venv}/bin/python", "{adapters}/kserve_onnx.py", "{onnx}", "{model}", "{port}")
        + ("{threads}", "{port2}"),
        pins=("kserve==0.21.0", f"onnxruntime=={ORT}"),
        binary=True,
    ),
    "flask": Peer(
        "naive Flask",
        ("{py}", "-m", "bench.flask_baseline", "--model", "{onnx}", "--port", "{port}")
        + ("--threads", "{threads}"),
    ),
}
MODELS = {"mlp": ("x", (784,)), "resnet18": ("image", (3, 224, 224))}


@dataclass(frozen=True)
class Case:
    """One request: a model, a batch, JSON or binary tensors."""

    model: str
    batch: int
    binary: bool

    @property
    def name(self) -> str:
        return f"{self.model} b{self.batch} {'binary' if self.binary else 'JSON'}"


CASES: tuple[Case, ...] = (Case("mlp", 1, False), Case("mlp", 32, False))
CASES += (Case("resnet18", 1, False), Case("resnet18", 1, True))


@dataclass
class Request:
    """A case's body (also on disk, for wrk), its headers, and what raw onnxruntime answers."""

    path: str
    body: bytes
    headers: dict[str, str]
    file: Path
    expected: dict[str, np.ndarray]


def build_model(name: str) -> bytes:
    """The model's ONNX bytes, from the project's own example builders."""
    from model_build.examples.mlp import build_mlp
    from model_build.examples.resnet import build_resnet18

    return build_mlp() if name == "mlp" else build_resnet18()


def requests_for(model: str, onnx: Path, threads: int, work: Path) -> dict[Case, Request]:
    """Every case of `model`, expected outputs from a raw session (same file, same threads)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    raw = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    names = [meta.name for meta in raw.get_outputs()]
    input_name, shape = MODELS[model]
    out: dict[Case, Request] = {}
    for case in (c for c in CASES if c.model == model):
        x = np.random.default_rng(case.batch).standard_normal((case.batch, *shape))
        x = x.astype(np.float32)
        as_json, as_binary, length = bodies(input_name, x)
        headers = {"Content-Type": "application/json"}
        if case.binary:
            headers = {"Content-Type": "application/octet-stream"}
            headers["Inference-Header-Content-Length"] = str(length)
        file = work / f"{case.name.replace(' ', '-')}.body"
        file.write_bytes(as_binary if case.binary else as_json)
        expected = dict(zip(names, raw.run(None, {input_name: x}), strict=True))
        path = f"/v2/models/{model}/infer"
        out[case] = Request(path, file.read_bytes(), headers, file, expected)
    return out


def ensure_venv(name: str, peer: Peer, shared: Path | None, console: Console) -> Path:
    """The peer's pinned venv: DIR/name as given by --peer-venvs (its versions checked, never
    changed), else .maas/peers/name, reused while its stamp matches, created otherwise."""
    if shared is not None:
        packages, versions = zip(*(pin.split("==") for pin in peer.pins), strict=True)
        script = "import importlib.metadata as m, sys; print(*map(m.version, sys.argv[1:]))"
        got = subprocess.run(
            [f"{shared / name}/bin/python", "-c", script, *packages],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        if tuple(got) != versions:
            raise SystemExit(f"{shared / name}: {packages} are {got}, expected {versions}")
        return shared / name
    venv = ROOT / ".maas" / "peers" / name
    stamp, want = venv / "peers-stamp.json", orjson.dumps({"pins": peer.pins, "py": sys.version})
    if stamp.exists() and stamp.read_bytes() == want:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    with console.status(f"creating the {peer.label} environment (first run only, ~2 min)..."):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        pip = [f"{venv}/bin/python", "-m", "pip", "install", "--disable-pip-version-check"]
        with (venv / "pip.log").open("wb") as log:
            done = subprocess.run([*pip, *peer.pins], stdout=log, stderr=log, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"pip install {' '.join(peer.pins)} failed: see {venv / 'pip.log'}")
    stamp.write_bytes(want)
    console.print(f"created {venv}: {', '.join(peer.pins)}")
    return venv


# --- servers: spawn, poll, check, stop ------------------------------------------------------------

LIVE: set[subprocess.Popen[bytes]] = set()


def mlserver_folder(work: Path, model: str, fields: dict[str, str]) -> str:
    """settings.json and <model>/model-settings.json for `mlserver start` (the issue's setup:
    parallel_workers 0), loopback only, no metrics server, no access log (debug off)."""
    folder = Path(tempfile.mkdtemp(prefix="mlserver-", dir=work))
    settings = {"debug": False, "host": "127.0.0.1", "http_port": int(fields["port"])}
    settings |= {"grpc_port": free_port(), "metrics_endpoint": None, "parallel_workers": 0}
    (folder / "settings.json").write_bytes(orjson.dumps(settings))
    (folder / model).mkdir()
    model_settings: dict[str, Any] = {"name": model, "implementation": "mlserver_onnx.OnnxRuntime"}
    model_settings["parameters"] = {"uri": fields["onnx"], "extra": {"threads": fields["threads"]}}
    (folder / model / "model-settings.json").write_bytes(orjson.dumps(model_settings))
    return str(folder)


def spawn(name: str, model: str, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    """One server for `model` on a free loopback port, in its own process group."""
    peer, work, port = SERVERS[name], args.work, free_port()
    fields = {"py": sys.executable, "venv": str(args.venvs.get(name)), "model": model}
    fields |= {"onnx": str(work / f"{model}.onnx"), "port": str(port), "port2": str(free_port())}
    fields |= {"threads": str(args.threads), "store": str(work / f"{model}-store")}
    fields |= {"adapters": str(ROOT / "bench" / "peer_servers")}
    if name == "mlserver":
        fields["folder"] = mlserver_folder(work, model, fields)
    fields["cache"] = tempfile.mkdtemp(prefix="cache-", dir=work)
    env = {**os.environ, **{k: v.format(**fields) for k, v in peer.env.items()}}
    with (work / f"{name}-{model}.log").open("wb") as log:
        proc = subprocess.Popen(
            [part.format(**fields) for part in peer.command],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=work if peer.pins else ROOT,  # the project's: bench.flask_baseline importable
        )
    LIVE.add(proc)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then (at most 15 s later) SIGKILL what is left of it."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    LIVE.discard(proc)


def stop_all() -> None:
    """Stop every server still running (at exit, whatever happened)."""
    for proc in list(LIVE):
        stop(proc)


def post(port: int, request: Request) -> tuple[int, str | None, bytes]:
    """One request on a fresh connection: status, binary header length, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", request.path, body=request.body, headers=request.headers)
        response = conn.getresponse()
        length = response.getheader("inference-header-content-length")
        return response.status, length, response.read()
    finally:
        conn.close()


def first_answer(
    proc: subprocess.Popen[bytes], port: int, request: Request
) -> tuple[str | None, bytes]:
    """Poll the infer request every 20 ms until it answers 200 (at most 180 s)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before answering")
        try:
            status, length, body = post(port, request)
            if status == 200:
                return length, body
            if status in (400, 422, 500):  # not "still loading": the answer will not change
                raise RuntimeError(f"answered {status}: {body[:300].decode(errors='replace')}")
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        time.sleep(0.02)
    raise RuntimeError("no 200 to the infer request within 180 s")


def compare(length: str | None, body: bytes, expected: dict[str, np.ndarray]) -> tuple[float, bool]:
    """The largest |served - raw| over the outputs (JSON or binary), and whether every output is
    allclose (rtol 1e-5, atol 1e-6)."""
    end = int(length) if length else len(body)
    got: dict[str, np.ndarray] = {}
    for output in orjson.loads(body[:end])["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = np.asarray(output["data"], dtype=np.float64)
        else:
            data, end = np.frombuffer(body[end : end + size], dtype=np.float32), end + size
        got[output["name"]] = data.reshape(output["shape"])
    worst, ok = 0.0, True
    for name, want in expected.items():
        value = got.get(name)
        if value is None or value.shape != want.shape:
            return float("inf"), False
        worst = max(worst, float(np.max(np.abs(value - want))))
        ok = ok and bool(np.allclose(value, want, rtol=1e-5, atol=1e-6))
    return worst, ok


def tree_rss_mb(pid: int) -> float:
    """VmRSS summed over the process and all its descendants (/proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            lines = Path(f"/proc/{current}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return round(total / 1024, 1)


# --- load: wrk, else Python threads ---------------------------------------------------------------

LUA = """wrk.method = "POST"
local f = assert(io.open([[{file}]], "rb"))
wrk.body = f:read("*a")
f:close()
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('PEERS {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
    .. '"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}}\\n', summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), e.status, e.connect,
    e.read, e.write, e.timeout))
end
"""


def wrk(port: int, request: Request, clients: int, seconds: int) -> dict[str, Any]:
    """One wrk run (-t 1 for one client, else -t 2); its done() prints the figures as JSON."""
    script = request.file.with_suffix(".lua")
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request.headers.items())
    script.write_text(LUA.format(file=request.file, headers=headers))
    command = ["wrk", "-t", "1" if clients == 1 else "2", "-c", str(clients), "-d", f"{seconds}s"]
    url = f"http://127.0.0.1:{port}{request.path}"
    done = subprocess.run(
        [*command, "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("PEERS ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures: {done.stderr.strip() or done.stdout[-300:]}")
    return dict(orjson.loads(line[6:]))


def pyload(port: int, request: Request, clients: int, seconds: int) -> dict[str, Any]:
    """The fallback: `clients` threads, each a keep-alive connection posting for `seconds`."""
    latencies: list[float] = []
    errors = dict.fromkeys(ERRORS, 0)
    lock, stop_at = threading.Lock(), time.perf_counter() + seconds

    def worker() -> None:
        conn, local = None, []
        while time.perf_counter() < stop_at:
            start, kind = time.perf_counter(), ""
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", request.path, body=request.body, headers=request.headers)
                response = conn.getresponse()
                response.read()
                kind = "" if 200 <= response.status < 300 else "status"
            except (OSError, http.client.HTTPException) as exc:
                conn, kind = None, "connect" if isinstance(exc, ConnectionRefusedError) else "read"
                kind = "timeout" if isinstance(exc, TimeoutError) else kind
            local.append(time.perf_counter() - start)
            if kind:
                with lock:
                    errors[kind] += 1
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    micros = np.asarray(latencies or [0.0]) * 1e6
    p50, p99 = np.percentile(micros, [50, 99])
    duration = int((time.perf_counter() - began) * 1e6)
    return {
        "requests": len(latencies),
        "duration_us": duration,
        "p50_us": p50,
        "p99_us": p99,
        **errors,
    }


def settle(pid: int) -> None:
    """Wait (at most 30 s) until the server uses under 10% of a CPU over 100 ms: the work left by
    requests a run cut off must not count against the next run."""
    deadline = time.monotonic() + 30

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, every thread

    while time.monotonic() < deadline:
        before = ticks()
        time.sleep(0.1)
        if ticks() - before <= os.sysconf("SC_CLK_TCK") // 100:
            return


def measure(
    args: argparse.Namespace, pid: int, port: int, request: Request, clients: int
) -> dict[str, Any]:
    """Warm up for 1 s, then one timed run; its figures only when every answer was a 2xx."""
    load = wrk if args.generator == "wrk" else pyload
    load(port, request, clients, 1)
    settle(pid)
    got = load(port, request, clients, args.seconds)
    settle(pid)
    errors = {k: got[k] for k in ERRORS if got[k]}
    if errors or not got["requests"]:
        return {"requests": got["requests"], "status": f"failed: errors {errors or 'no requests'}"}
    return {
        "requests": got["requests"],
        "status": "ok",
        "rps": round(got["requests"] / (got["duration_us"] / 1e6), 1),
        "p50_ms": round(float(got["p50_us"]) / 1000, 2),
        "p99_ms": round(float(got["p99_us"]) / 1000, 2),
    }


# --- one server at a time -------------------------------------------------------------------------


def plan_for(name: str, model: str, args: argparse.Namespace) -> list[tuple[Case, int]]:
    """The (case, clients) runs of one server on one model."""
    rows = SERVERS[name].rows
    batching = [(CASES[0], args.batching_clients)] if args.batching_clients else []
    batching = batching if model == "mlp" and "batching" in rows else []
    if rows == "batching":
        return batching
    binary = SERVERS[name].binary
    cases = [c for c in CASES if c.model == model and binary >= c.binary]
    return [(case, n) for case in cases for n in args.clients] + batching


def bench_server(
    name: str, model: str, requests: dict[Case, Request], args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Spawn, cold start, check every case's outputs, run the plan, RSS after it, stop."""
    label, plan = SERVERS[name].label, plan_for(name, model, args)
    server: dict[str, Any] = {"server": name, "label": label, "model": model}
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    proc, port = spawn(name, model, args)
    try:
        answer = first_answer(proc, port, requests[plan[0][0]])
        cold_start = round(time.perf_counter() - began, 2)
        worst, failed = 0.0, list[str]()
        for case in dict.fromkeys(case for case, _ in plan):
            length, body = answer if case == plan[0][0] else post(port, requests[case])[1:]
            diff, ok = compare(length, body, requests[case].expected)
            worst, failed = max(worst, diff), failed + ([] if ok else [case.name])
        server["max_abs_diff"] = worst
        if failed:
            server["status"] = f"failed: outputs differ from onnxruntime ({', '.join(failed)})"
            return server, rows
        server["cold_start_s"] = cold_start
        for case, clients in plan:
            args.console.log(f"{label}: {case.name}, {clients} clients")
            got = measure(args, proc.pid, port, requests[case], clients)
            rows.append({"server": name, "label": label, "case": case.name, "clients": clients})
            rows[-1].update(got)
        server |= {"rss_mb": tree_rss_mb(proc.pid), "status": "ok"}
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        server["status"] = f"failed: {exc}"
        server["log_tail"] = (args.work / f"{name}-{model}.log").read_text(errors="replace")[-800:]
    finally:
        stop(proc)
    return server, rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every chosen server on every chosen model, one server at a time: the results document."""
    console: Console = args.console
    names = [name for name in SERVERS if name in args.servers]
    args.venvs = {
        name: ensure_venv(name, SERVERS[name], args.peer_venvs, console)
        for name in names
        if SERVERS[name].pins
    }
    servers, rows = [], []
    for model in args.models:
        with console.status(f"building {model}..."):
            artifact = build_model(model)
        (args.work / f"{model}.onnx").write_bytes(artifact)
        manifest = manifest_for(artifact, name=model)[0]
        Repository(LocalStore(args.work / f"{model}-store")).publish(manifest, artifact)
        requests = requests_for(model, args.work / f"{model}.onnx", args.threads, args.work)
        for name in names:
            if plan_for(name, model, args):
                server, got = bench_server(name, model, requests, args)
                servers.append(server)
                rows += got
                console.log(f"{server['label']}, {model}: {server['status']}")
    generator = args.generator
    if generator == "wrk":  # with its version: "wrk debian/4.1.0-3+b2"
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
        generator = " ".join(version[:2])
    meta = {"generator": generator, "seconds": args.seconds, "threads": args.threads}
    meta |= {"onnxruntime": ORT, "python": platform.python_version(), "cpus": os.cpu_count()}
    meta |= {"load_average": os.getloadavg(), "pins": {n: SERVERS[n].pins for n in args.venvs}}
    return {"meta": meta, "servers": servers, "rows": rows}


def report(doc: dict[str, Any], console: Console) -> None:
    """The runs (each also as a ratio to maas serve's) and the servers (cold start, memory)."""
    meta = doc["meta"]
    table = Table(
        title=f"{meta['generator']}, {meta['seconds']} s a run, {meta['threads']} threads"
    )
    columns = ("server", "case", "clients", "requests", "req/s", "p50 ms", "p99 ms", "x maas")
    for column in columns:
        table.add_column(column, justify="left" if column in ("server", "case") else "right")
    base = {(r["case"], r["clients"]): r.get("rps") for r in doc["rows"] if r["server"] == "maas"}
    for r in doc["rows"]:
        ok, maas = r["status"] == "ok", base.get((r["case"], r["clients"]))
        figures = [r["status"], "", ""]
        if ok:
            rps = f"{r['rps']:.0f}" if r["rps"] >= 100 else f"{r['rps']:.1f}"
            figures = [rps, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}"]
        ratio = f"{r['rps'] / maas:.2f}" if ok and maas else ""
        table.add_row(r["label"], r["case"], str(r["clients"]), str(r["requests"]), *figures, ratio)
    console.print(table)
    servers = Table(title="servers (cold start: spawn until the first 200 to an infer request)")
    for column in ("server", "model", "cold start s", "RSS MB after", "max |diff|", "status"):
        servers.add_column(column)
    for s in doc["servers"]:
        diff = f"{s['max_abs_diff']:.1e}" if "max_abs_diff" in s else ""
        cells = (str(s.get("cold_start_s", "")), str(s.get("rss_mb", "")), diff, s["status"])
        servers.add_row(s["label"], s["model"], *cells)
    console.print(servers)
    lead = Table(title="maas serve's lead: its req/s over the best peer's (MLServer, KServe)")
    for column in ("case", "clients", "maas serve", "best peer", "lead"):
        lead.add_column(column, justify="left" if column == "case" else "right")
    for (case, clients), maas in base.items():
        peers = [
            (r["rps"], r["label"])
            for r in doc["rows"]
            if r["server"] in ("mlserver", "kserve")
            and (r["case"], r["clients"]) == (case, clients)
            and r["status"] == "ok"
        ]
        if maas and peers:
            best, label = max(peers)
            lead_cells = (f"{maas:.0f}", f"{best:.0f} {label}", f"{maas / best:.2f}x")
            lead.add_row(case, str(clients), *lead_cells)
    console.print(lead)


def plot(doc: dict[str, Any], path: Path) -> None:
    """Bars: req/s per server, grouped by case and clients (counted runs only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    groups = list(dict.fromkeys((r["case"], r["clients"]) for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(groups)), 5))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        got = {(r["case"], r["clients"]): r["rps"] for r in rows if r["label"] == label}
        xs = [x for x, key in enumerate(groups) if key in got]
        ax.bar([x + i * width for x in xs], [got[groups[x]] for x in xs], width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))])
    ax.set_xticklabels([f"{case}\n{n} clients" for case, n in groups], fontsize=8)
    ax.set_yscale("log")  # the MLP and ResNet-18 differ a hundredfold
    ax.set_ylabel("requests per second (log)")
    ax.set_title(f"OIP v2 servers on 127.0.0.1, {doc['meta']['threads']} intra-op threads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Parse options, run, print, write JSON (and the plot)."""
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=list(SERVERS))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--batching-clients", type=int, default=32, help="0: no batching rows")
    parser.add_argument("--seconds", type=int, default=10, help="per timed run (after 1 s warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--peer-venvs", type=Path, help="use DIR/mlserver, DIR/kserve as they are")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    parser.add_argument("--plot", type=Path, help="write a PNG bar chart of req/s here")
    args = parser.parse_args()
    args.console = Console()
    args.generator = "wrk" if shutil.which("wrk") else "python threads"
    if args.generator != "wrk":
        args.console.print("[yellow]wrk is not on PATH: the Python load generator is used")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally blocks run
    atexit.register(stop_all)
    with tempfile.TemporaryDirectory(prefix="maas-peers-") as tmp:
        args.work = Path(tmp)
        doc = run(args)
    report(doc, args.console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    if args.plot:
        plot(doc, args.plot)
    args.console.print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))


if __name__ == "__main__":
    main()
