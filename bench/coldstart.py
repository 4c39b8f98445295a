"""`python -m bench.coldstart`: a fresh process to the first response, against the floor.

Floor: a fresh Python process that imports fastapi, mangum and onnxruntime, creates the session
from a local file and runs once. Ours: a fresh process that imports the API handler and answers
a real API Gateway event, the model fetched from an S3 endpoint (moto's server on loopback),
its sha256 verified and its session created. Both are timed from spawn to exit, alternately,
several times; the medians are compared, and every phase of ours is reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from model_build.lambda_local import api_event
from model_build.loopback import MotoServer

ROOT = Path(__file__).resolve().parent.parent

FLOOR = """
import time, json, sys
t0 = time.perf_counter()
import fastapi, mangum, onnxruntime, numpy
t1 = time.perf_counter()
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
session.run(None, {"x": numpy.zeros((1, 784), numpy.float32)})
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "session": t2 - t1, "run": t3 - t2,
                  "answered_at": time.time()}))
"""

OURS = """
import time, json, sys
t0 = time.perf_counter()
phases = {}
def timed(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[key] = phases.get(key, 0.0) + time.perf_counter() - start
    setattr(owner, name, wrapper)
import functions.core.repository as repository, functions.core.cache as cache
import functions.core.sessions as sessions, functions.core.runner as runner
timed(repository.Repository, "manifest", "manifest (S3 GET + parse)")
timed(repository.Repository, "resolve", "resolve latest (S3 LIST)")
timed(cache.ArtifactCache, "fetch", "artifact (S3 GET to /tmp, digest on the way)")
timed(sessions.OrtSessionFactory, "__call__", "session created")
timed(runner.Runner, "run", "inference")
t1 = time.perf_counter()
from functions.api.handler import handler  # on Lambda (the env says so) this builds the runtime
t2 = time.perf_counter()
event = json.loads(open(sys.argv[1]).read())
from model_build.lambda_local import LocalContext
response = handler(event, LocalContext())
t3 = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({
    "import core + wrappers": t1 - t0,
    "import handler, runtime built (settings, telemetry, botocore, S3 client)": t2 - t1,
    "first request": t3 - t2,
    **phases,
    "answered_at": time.time(),
}))
"""

BATCH = """
import time, json, sys
t0 = time.perf_counter()
import functions.batch.handler
t1 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "fastapi imported": "fastapi" in sys.modules,
                  "answered_at": time.time()}))
"""


def spawn(
    code: str, args: list[str], env: dict[str, str], *, log: IO[str] | None = None
) -> tuple[float, dict[str, Any]]:
    """Run `code` in a fresh interpreter; seconds from spawn to its answer, and its phases.

    The answer is the last line of its stdout, or of its stderr when `log` takes its stdout
    (a Lambda handler's log lines, say).
    """
    start = time.time()
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    answer = (result.stdout if log is None else result.stderr).strip().splitlines()[-1]
    phases: dict[str, Any] = orjson.loads(answer)
    answered = phases.pop("answered_at", None)
    return (answered or time.time()) - start, phases


def run(rounds: int, console: Console) -> dict[str, Any]:
    """Alternate floor and ours `rounds` times; return medians and phases."""
    import boto3

    from functions.core.repository import Repository
    from functions.stores import open_store
    from model_build.examples.mlp import build_mlp
    from model_build.inspect_onnx import manifest_for

    work = Path(tempfile.mkdtemp(prefix="maas-cold-"))
    model = build_mlp()
    (work / "mlp.onnx").write_bytes(model)
    moto = MotoServer().start()
    try:
        env = {
            **os.environ,
            **moto.environment(),
            "MAAS_STORE": "s3://cold-models",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",  # as Lambda sets it: build at init
        }
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        boto3.client("s3").create_bucket(Bucket="cold-models")
        Repository(open_store("s3://cold-models")).publish(
            manifest_for(model, name="mlp")[0], model
        )
        body = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 784],
                        "datatype": "FP32",
                        "data": np.zeros(784).tolist(),
                    }
                ]
            }
        )
        event = api_event("/v2/models/mlp/infer", body)
        (work / "event.json").write_bytes(orjson.dumps(event))
        floors, ours, batch = [], [], []
        for i in range(rounds):
            with console.status(f"round {i + 1}/{rounds}"):
                floors.append(spawn(FLOOR, [str(work / "mlp.onnx")], env))
                cache = work / f"cache-{i}"  # a cold /tmp: the artifact is fetched every round
                ours.append(
                    spawn(OURS, [str(work / "event.json")], {**env, "MAAS_CACHE_DIR": str(cache)})
                )
                batch.append(spawn(BATCH, [], env))
    finally:
        moto.stop()

    def median(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, float]:
        keys = samples[0][1].keys()
        out = {"spawn to first response": float(np.median([s[0] for s in samples]))}
        out |= {
            k: float(np.median([s[1][k] for s in samples]))
            for k in keys
            if not isinstance(samples[0][1][k], bool)
        }
        return out

    floor, api = median(floors), median(ours)
    return {
        "rounds": rounds,
        "floor": floor,
        "api": api,
        "ratio": api["spawn to first response"] / floor["spawn to first response"],
        "batch_import_seconds": float(np.median([b[1]["import"] for b in batch])),
        "batch_imports_fastapi": any(b[1]["fastapi imported"] for b in batch),
    }


def report(doc: dict[str, Any], console: Console) -> None:
    """Print the phases."""
    for title, key in (
        ("floor: imports + local session + one run", "floor"),
        ("API handler: cold start to first response", "api"),
    ):
        table = Table(title=title)
        table.add_column("phase")
        table.add_column("ms (median)", justify="right")
        for phase, seconds in doc[key].items():
            table.add_row(phase, f"{seconds * 1000:.1f}")
        console.print(table)
    console.print(
        f"cold start ratio (wall, medians of {doc['rounds']}): {doc['ratio']:.2f}x the floor"
    )
    console.print(
        f"batch handler import: {doc['batch_import_seconds'] * 1000:.0f} ms, "
        f"FastAPI imported: {doc['batch_imports_fastapi']}"
    )


def main() -> None:
    """Parse options, run, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "coldstart.json")
    args = parser.parse_args()
    console = Console()
    doc = run(args.rounds, console)
    report(doc, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
