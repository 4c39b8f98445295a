"""`python -m bench.heavy`: heavy models' cold start and peak memory, phase by phase, vs the floor.

Models, generated on demand in a temporary folder and deleted after (never committed):
- **bert**: a BERT-base-sized classifier (`transformers` BertConfig defaults: 12 layers, hidden
  768, vocabulary 30,522; random weights, no download) exported by torch to one ONNX file
  (~440 MB), sequence length 128;
- **big**: an embedding model whose table (2.46 GB by default) lives in external data, past
  protobuf's 2 GB limit (`model_build/examples/large.py`).

For each, in fresh processes, alternately: the **floor** (import onnxruntime and numpy, create
the session from the model's own files, run once) and **ours** (import the Lambda API handler,
answer a real API Gateway event from an empty cache: the model's files in the local store
verified where they are, BLAKE3 on every core, and the session created from them, run). The
time to copy the files alone is measured too: the acceptance compares ours to the floor plus
that copy (which a store on S3 must pay, and the local store no longer does). Peak RSS is each
process's own high-water mark (`VmHWM`; not `ru_maxrss`, which a child forked from a large
parent inherits). Then, on moto's S3 server, the store's download (parallel ranged GETs, hashed
in the same pass) against boto3's `download_file` on the same object, in MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from bench.coldstart import spawn
from model_build.lambda_local import api_event

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = 128
MOTO_PART_MB = 256

# A process's peak resident memory, MB, from the kernel's high-water mark.
PEAK = """
def HWM():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
"""

FLOOR = (
    PEAK
    + """
import time, json, sys
t0 = time.perf_counter()
import onnxruntime, numpy
t1 = time.perf_counter()
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = int(sys.argv[3])
session = onnxruntime.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
feeds = {k: numpy.asarray(v, dtype=numpy.int64) for k, v in json.loads(sys.argv[2]).items()}
out = session.run(None, feeds)[0]
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "session": t2 - t1, "run": t3 - t2,
                  "rss_mb": HWM(),
                  "out": out.ravel().tolist(), "answered_at": time.time()}))
"""
)

COPY = """
import time, json, sys, shutil, pathlib
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
t0 = time.perf_counter()
for path in source.rglob("*"):
    if path.is_file():
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.relative_to(source))
print(json.dumps({"copy": time.perf_counter() - t0, "answered_at": time.time()}))
"""

OURS = (
    PEAK
    + """
import time, json, sys, base64
t0 = time.perf_counter()
from functions.api.handler import handler
from model_build.lambda_local import LocalContext
t1 = time.perf_counter()
response = handler(json.loads(open(sys.argv[1]).read()), LocalContext())
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
body = response["body"]
doc = json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)
load = {}
sys.stdout.flush()
with open(sys.argv[2]) as lines:
    for line in lines:
        record = json.loads(line)
        if record.get("message") == "model loaded":
            load = record
sys.stderr.write(json.dumps({"imports": t1 - t0, "first request": t2 - t1,
                  "download+digest": load.get("download_ms", 0) / 1000,
                  "verify": load.get("verify_ms", 0) / 1000,
                  "in_place": load.get("in_place", False),
                  "session": load.get("session_ms", 0) / 1000,
                  "rss_mb": HWM(),
                  "out": doc["outputs"][0]["data"], "answered_at": time.time()}) + "\\n")
"""
)  # its stdout carries the function's log lines, as on Lambda


def build_bert(folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A BERT-base-sized sequence classifier, random weights, exported to `folder/model.onnx`."""
    import logging
    import warnings

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig()  # BERT-base: 12 layers, hidden 768, vocabulary 30,522
    config.num_labels = 2
    model = BertForSequenceClassification(config)
    model.eval()
    ids = torch.randint(0, 30522, (1, SEQUENCE), dtype=torch.int64)
    mask = torch.ones((1, SEQUENCE), dtype=torch.int64)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.onnx"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (ids, mask),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes=({0: batch, 1: sequence}, {0: batch, 1: sequence}),
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    program.save(str(target), external_data=False)
    return target, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}


def build_big(folder: Path, gigabytes: float) -> tuple[Path, dict[str, np.ndarray]]:
    """The embedding model with a `gigabytes` table in `model.onnx.data`."""
    from model_build.examples.large import embedding_rows, sample_ids, write_embedding_model

    graph = write_embedding_model(folder, table_bytes=int(gigabytes * 1e9))
    return graph, {"ids": sample_ids(embedding_rows(graph), batch=1)}


def _body(feeds: dict[str, np.ndarray]) -> bytes:
    inputs = [
        {"name": k, "shape": list(v.shape), "datatype": "INT64", "data": v}
        for k, v in feeds.items()
    ]
    return orjson.dumps({"inputs": inputs}, option=orjson.OPT_SERIALIZE_NUMPY)


def measure(
    name: str, graph: Path, feeds: dict[str, np.ndarray], work: Path, rounds: int, threads: int
) -> dict[str, Any]:
    """Publish `graph` to a local store, then alternate floor, copy and ours `rounds` times."""
    from functions.core.repository import Repository
    from functions.stores import LocalStore
    from model_build.inspect_onnx import artifact_from_file

    store = work / f"store-{name}"
    started = time.perf_counter()
    artifact = artifact_from_file(graph, name=name)
    Repository(LocalStore(store)).publish(artifact.manifest, artifact.graph, artifact.data)
    published = time.perf_counter() - started
    event = work / f"{name}-event.json"
    event.write_bytes(orjson.dumps(api_event(f"/v2/models/{name}/infer", _body(feeds))))
    plain = {k: v.tolist() for k, v in feeds.items()}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAAS_INTRA_OP_THREADS": str(threads)}
    floors, copies, ours = [], [], []
    for i in range(rounds):
        floors.append(spawn(FLOOR, [str(graph), orjson.dumps(plain).decode(), str(threads)], env))
        copy_to = work / f"copy-{i}"
        copies.append(spawn(COPY, [str(graph.parent), str(copy_to)], env))
        shutil.rmtree(copy_to, ignore_errors=True)
        cache, log = work / f"cache-{i}", work / f"log-{i}.jsonl"
        ours_env = {
            **env,
            "MAAS_STORE": str(store),
            "MAAS_CACHE_DIR": str(cache),
            "POWERTOOLS_SERVICE_NAME": "maas-bench",
        }
        with log.open("w") as sink:
            wall, phases = spawn(OURS, [str(event), str(log)], ours_env, log=sink)
        ours.append((wall, phases))
        shutil.rmtree(cache, ignore_errors=True)
    reference = np.asarray(floors[0][1]["out"], np.float32)
    equal = all(
        np.allclose(np.asarray(p.pop("out"), np.float32), reference, rtol=1e-5, atol=1e-6)
        for _, p in [*floors, *ours]
    )
    return {
        "model": name,
        "size_mb": round(artifact.manifest.total_bytes / 1e6, 1),
        "files": len(artifact.manifest.files),
        "publish_s": round(published, 2),
        "floor_s": statistics.median(w for w, _ in floors),
        "floor_session_s": statistics.median(p["session"] for _, p in floors),
        "floor_rss_mb": statistics.median(p["rss_mb"] for _, p in floors),
        "copy_s": statistics.median(p["copy"] for _, p in copies),
        "ours_s": statistics.median(w for w, _ in ours),
        "ours_download_s": statistics.median(p["download+digest"] for _, p in ours),
        "ours_verify_s": statistics.median(p["verify"] for _, p in ours),
        "ours_in_place": all(p["in_place"] for _, p in ours),
        "ours_session_s": statistics.median(p["session"] for _, p in ours),
        "ours_imports_s": statistics.median(p["imports"] for _, p in ours),
        "ours_rss_mb": statistics.median(p["rss_mb"] for _, p in ours),
        "outputs_equal": equal,
    }


def serve_paths(graph: Path, feeds: dict[str, np.ndarray], work: Path) -> dict[str, Any]:
    """The model published to moto's S3 and to a local store, answered by the Lambda handler
    (in process) and by `maas serve` (a subprocess), each against raw onnxruntime's outputs."""
    import http.client

    import onnxruntime as ort

    from functions.api.handler import handle
    from functions.core.repository import Repository
    from functions.runtime import build_runtime
    from functions.settings import Settings
    from functions.stores import open_store
    from model_build.inspect_onnx import artifact_from_file
    from model_build.lambda_local import LocalContext
    from model_build.loopback import free_port

    raw = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    expected = np.asarray(raw.run(None, feeds)[0])
    del raw
    body = _body(feeds)
    results: dict[str, Any] = {}
    with _moto():
        import boto3

        boto3.client("s3").create_bucket(Bucket="heavy-store")
        artifact = artifact_from_file(graph, name="big")
        for label, uri in (("local", str(work / "paths-store")), ("s3", "s3://heavy-store")):
            started = time.perf_counter()
            Repository(open_store(uri)).publish(artifact.manifest, artifact.graph, artifact.data)
            published = time.perf_counter() - started
            # moto reads a whole object for every ranged GET (under a lock): large parts keep a
            # 2.46 GB download from it to minutes; S3 itself serves the default 8 MB parts.
            settings = Settings(
                store=uri, cache_dir=work / f"paths-cache-{label}", s3_part_mb=MOTO_PART_MB
            )
            runtime = build_runtime(settings)
            started = time.perf_counter()
            answer = handle(runtime, api_event("/v2/models/big/infer", body), LocalContext())  # type: ignore[arg-type]
            first = time.perf_counter() - started
            doc = orjson.loads(answer["body"])
            handler_equal = np.allclose(
                np.asarray(doc["outputs"][0]["data"], np.float32).reshape(expected.shape),
                expected,
                rtol=1e-5,
                atol=1e-6,
            )
            del runtime
            shutil.rmtree(work / f"paths-cache-{label}", ignore_errors=True)
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            env["MAAS_CACHE_DIR"] = str(work / f"serve-cache-{label}")
            env["MAAS_S3_PART_MB"] = str(MOTO_PART_MB)
            process = subprocess.Popen(
                [sys.executable, "-m", "model_build", "serve", "--store", uri, "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                        connection.request("GET", "/v2/health/live")
                        connection.getresponse().read()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                connection.request(
                    "POST", "/v2/models/big/infer", body, {"content-type": "application/json"}
                )
                reply = connection.getresponse()
                served = orjson.loads(reply.read())
                serve_equal = reply.status == 200 and np.allclose(
                    np.asarray(served["outputs"][0]["data"], np.float32).reshape(expected.shape),
                    expected,
                    rtol=1e-5,
                    atol=1e-6,
                )
            finally:
                process.terminate()
                process.wait(timeout=30)
                shutil.rmtree(work / f"serve-cache-{label}", ignore_errors=True)
            results[label] = {
                "publish_s": round(published, 2),
                "handler_first_request_s": round(first, 2),
                "handler_equal": bool(handler_equal),
                "maas_serve_equal": bool(serve_equal),
            }
        shutil.rmtree(work / "paths-store", ignore_errors=True)
    return results


@contextmanager
def _moto() -> Iterator[None]:
    """moto's S3 server on loopback, named by the environment while the block runs."""
    from model_build.loopback import MotoServer

    server = MotoServer().start()
    saved = dict(os.environ)
    os.environ.update(server.environment())
    try:
        yield
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def downloads(path: Path, console: Console) -> dict[str, float]:
    """MB/s of the S3 store's download against boto3's download_file, on moto's server."""
    import boto3

    from functions.stores.s3 import S3Store

    with _moto():
        client = boto3.client("s3")
        client.create_bucket(Bucket="heavy")
        with console.status(f"uploading {path.stat().st_size / 1e6:.0f} MB to moto..."):
            client.upload_file(str(path), "heavy", "object")
        size = path.stat().st_size
        store = S3Store(bucket="heavy")
        rates: dict[str, list[float]] = {"maas S3Store.download": [], "boto3 download_file": []}
        target = path.parent / "downloaded"
        for _ in range(2):
            started = time.perf_counter()
            store.download("object", target, size)
            rates["maas S3Store.download"].append(size / 1e6 / (time.perf_counter() - started))
            target.unlink()
            started = time.perf_counter()
            client.download_file("heavy", "object", str(target))
            rates["boto3 download_file"].append(size / 1e6 / (time.perf_counter() - started))
            target.unlink()
        return {k: round(statistics.median(v), 1) for k, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.heavy", description=__doc__)
    parser.add_argument("--models", nargs="+", choices=["bert", "big"], default=["bert", "big"])
    parser.add_argument("--big-gb", type=float, default=2.46)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--download-mb", type=int, default=512, help="0: skip the S3 download")
    parser.add_argument(
        "--paths",
        action="store_true",
        help="also serve the big model from moto's S3 and a local store, through the handler "
        "and maas serve, checked against raw onnxruntime",
    )
    parser.add_argument("--work", type=Path, default=None, help="where models are generated")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "heavy.json")
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="maas-heavy-", dir=args.work))
    results: dict[str, Any] = {"models": []}
    try:
        for name in args.models:
            with console.status(f"building {name}..."):
                started = time.perf_counter()
                if name == "bert":
                    graph, feeds = build_bert(work / "bert")
                else:
                    graph, feeds = build_big(work / "big", args.big_gb)
                built = time.perf_counter() - started
            with console.status(f"measuring {name} ({args.rounds} rounds)..."):
                row = measure(name, graph, feeds, work, args.rounds, args.threads)
            row["build_s"] = round(built, 1)
            results["models"].append(row)
            if name == "big" and args.paths:
                with console.status("serving the big model from S3 and locally..."):
                    try:
                        results["big_paths"] = serve_paths(graph, feeds, work)
                    except Exception as exc:  # the other figures still count: report it
                        results["big_paths"] = {"error": f"{type(exc).__name__}: {exc}"}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
            shutil.rmtree(graph.parent, ignore_errors=True)
            shutil.rmtree(work / f"store-{name}", ignore_errors=True)
        if args.download_mb:
            blob = work / "blob.bin"
            with blob.open("wb") as handle:
                rng = np.random.default_rng(0)
                for _ in range(args.download_mb):
                    handle.write(rng.bytes(1 << 20))
            results["download_mb_per_s"] = downloads(blob, console)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    report(results, console)


def report(results: dict[str, Any], console: Console) -> None:
    table = Table(title="heavy models, fresh processes: cold start (medians) and peak RSS")
    for column in ("model", "MB", "floor s", "copy s", "ours s", "vs floor+copy", "RSS MB"):
        table.add_column(column, justify="right")
    for r in results["models"]:
        table.add_row(
            r["model"],
            f"{r['size_mb']:.0f}",
            f"{r['floor_s']:.2f}",
            f"{r['copy_s']:.2f}",
            f"{r['ours_s']:.2f}",
            f"{r['ours_s'] / (r['floor_s'] + r['copy_s']):.2f}x",
            f"{r['floor_rss_mb']:.0f} / {r['ours_rss_mb']:.0f}",
        )
    console.print(table)
    for r in results["models"]:
        console.print(
            f"{r['model']}: ours {r['ours_s'] / r['floor_s']:.2f}x the floor without the copy; "
            f"download+digest {r['ours_download_s']:.2f} s, verify {r['ours_verify_s']:.2f} s "
            f"(in place: {r['ours_in_place']}), session {r['ours_session_s']:.2f} s "
            f"(floor {r['floor_session_s']:.2f} s), imports {r['ours_imports_s']:.2f} s; "
            f"RSS {r['ours_rss_mb'] / r['floor_rss_mb']:.2f}x; outputs equal: "
            f"{r['outputs_equal']}; published in {r['publish_s']} s, built in {r['build_s']} s"
        )
    if "big_paths" in results:
        console.print(f"big model, served: {results['big_paths']}")
    if "download_mb_per_s" in results:
        console.print(f"S3 download on moto, MB/s: {results['download_mb_per_s']}")


if __name__ == "__main__":
    main()
