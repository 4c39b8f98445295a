"""`python -m bench.shards`: `maas batch --workers N` on a large CSV against raw onnxruntime.

A CSV of `--rows` rows for the MLP 784-512-512-10 (pixel-like integers 0-255, ~2.8 KB a row:
1,000,000 rows make 2.8 GB; or with `--values float` decimals 0.0000-1.0000, 5.3 GB) is
generated, scored, checked and deleted. Baselines, each one process with one onnxruntime
thread (what one worker gets on a 2-core machine):
- raw onnxruntime reading the CSV: numpy's C reader (`np.loadtxt`, float32) on blocks of lines,
  then `session.run`: the least a script must do to score this file;
- with integer pixels, the same reading them as int32 (a script that knows they are whole
  numbers: numpy reads integers ~1.5x faster than floats; maas batch does this by itself);
- raw onnxruntime in memory: `session.run` on the parsed rows only (how fast the model is).
Then `maas batch FILE --workers N` (the CLI, its shard plan, N processes, the combining step).
Its output is compared with the in-memory raw outputs row for row; each worker's peak RSS comes
from its shard results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from functions.core.repository import Repository
from functions.core.sessions import make_session
from functions.stores import LocalStore
from model_build.examples.mlp import build_mlp
from model_build.inspect_onnx import manifest_for

BLOCK = 4096


def write_csv(path: Path, rows: int, values: str = "int", seed: int = 0) -> np.ndarray:
    """A header and `rows` rows of 784 pixels, as integers 0-255 or as decimals (0.0000 to
    1.0000, the pixels scaled); returns them as float32 (for raw outputs)."""
    rng = np.random.default_rng(seed)
    texts = [str(i) if values == "int" else f"{i / 255:.4f}" for i in range(256)]
    table = np.array(texts, dtype=object)
    numbers = np.array([float(t) for t in texts], dtype=np.float32)
    x = np.empty((rows, 784), np.float32)
    with path.open("w") as out:
        out.write(",".join(f"p{i}" for i in range(784)) + "\n")
        for start in range(0, rows, BLOCK):
            block = rng.integers(0, 256, size=(min(BLOCK, rows - start), 784))
            x[start : start + len(block)] = numbers[block]
            out.write("".join(",".join(table[r]) + "\n" for r in block))
    return x


def raw_from_csv(model: bytes, path: Path, parse: type[np.number[Any]] = np.float32) -> float:
    """Seconds for one process, one thread, to read the CSV with numpy and run every block;
    `parse` np.int32: a script that knows its values are whole numbers reads them as such."""
    session = make_session(model, 1)
    started = time.perf_counter()
    with path.open() as lines:
        next(lines)
        while block := list(islice(lines, BLOCK)):
            x = np.loadtxt(block, delimiter=",", dtype=parse, ndmin=2, comments=None)
            session.run(None, {"x": x.astype(np.float32, copy=False)})
    return time.perf_counter() - started


def raw_in_memory(model: bytes, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds for `session.run` alone over the rows, one thread; and the outputs."""
    session = make_session(model, 1)
    session.run(None, {"x": x[:BLOCK]})
    outputs = []
    started = time.perf_counter()
    for i in range(0, len(x), BLOCK):
        outputs.append(session.run(None, {"x": x[i : i + BLOCK]})[0])
    return time.perf_counter() - started, np.concatenate(outputs)


def sharded(path: Path, store: Path, workers: int, shard_mb: int, out: Path) -> dict[str, Any]:
    """`maas batch --workers N` in a fresh process: its summary and wall time."""
    env = os.environ | {
        "MAAS_CACHE_DIR": str(store.parent / "cache"),
        "MAAS_BATCH_SHARD_BYTES": str(shard_mb * 1024 * 1024),
        "MAAS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "model_build", "batch", str(path), "--model", "mlp"]
    command += ["--store", str(store), "--workers", str(workers), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"maas batch failed: {done.stderr[-2000:]}")
    return dict(orjson.loads(done.stdout)) | {"wall_seconds": seconds}


def run(rows: int, workers: int, shard_mb: int, values: str, console: Console) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="maas-bench-shards-"))
    try:
        model = build_mlp()
        store = work / "store"
        Repository(LocalStore(store)).publish(manifest_for(model, name="mlp")[0], model)
        path = work / "in.csv"
        with console.status(f"writing {rows:,} rows..."):
            x = write_csv(path, rows, values)
        size_mb = path.stat().st_size / 1e6
        console.print(f"{rows:,} rows x 784 {values} pixels = {size_mb:,.0f} MB of CSV")
        with console.status("raw onnxruntime, in memory..."):
            memory_s, expected = raw_in_memory(model, x)
        del x
        with console.status("raw onnxruntime reading the CSV..."):
            csv_s = raw_from_csv(model, path)
        int_s = None
        if values == "int":
            with console.status("raw onnxruntime reading the CSV as integers..."):
                int_s = raw_from_csv(model, path, np.int32)
        out = work / "out.jsonl"
        with console.status(f"maas batch --workers {workers}..."):
            summary = sharded(path, store, workers, shard_mb, out)
        with console.status("checking the output row for row..."):
            got = np.asarray([orjson.loads(line) for line in out.open("rb")], dtype=np.float32)
        assert got.shape == expected.shape, (got.shape, expected.shape)
        max_diff = float(np.abs(got - expected).max())
        assert max_diff < 1e-5, max_diff  # onnxruntime's rounding varies with batch size
        result = {
            "rows": rows,
            "values": values,
            "csv_mb": round(size_mb),
            "workers": workers,
            "shards": summary["shards"],
            "raw_memory_rows_s": round(rows / memory_s),
            "raw_csv_rows_s": round(rows / csv_s),
            "raw_csv_int_rows_s": round(rows / int_s) if int_s else None,
            "maas_rows_s": round(rows / summary["wall_seconds"]),
            "maas_seconds": round(summary["wall_seconds"], 2),
            "maas_inner_seconds": summary["duration_seconds"],
            "max_abs_diff": max_diff,
            "peak_rss_mb": summary.get("peak_rss_mb"),
        }
        result["per_worker_vs_raw_csv"] = round(
            result["maas_rows_s"] / workers / result["raw_csv_rows_s"], 3
        )
        if int_s:
            result["per_worker_vs_raw_csv_int"] = round(
                result["maas_rows_s"] / workers / result["raw_csv_int_rows_s"], 3
            )
        result["per_worker_vs_raw_memory"] = round(
            result["maas_rows_s"] / workers / result["raw_memory_rows_s"], 3
        )
        report(result, console)
        return result
    finally:
        for item in sorted(work.rglob("*"), reverse=True):
            item.unlink() if item.is_file() or item.is_symlink() else item.rmdir()
        work.rmdir()


def report(r: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"{r['rows']:,}-row CSV of {r['values']} pixels ({r['csv_mb']:,} MB), "
        "MLP 784-512-512-10"
    )
    for column in ("path", "rows/s", "per process", "vs raw (CSV)", "vs raw (memory)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    raw_csv, raw_mem = r["raw_csv_rows_s"], r["raw_memory_rows_s"]
    table.add_row(
        "raw onnxruntime, in memory (1 thread)", f"{raw_mem:,}", f"{raw_mem:,}", "", "1.00x"
    )
    table.add_row(
        "raw onnxruntime + np.loadtxt (1 thread)",
        f"{raw_csv:,}",
        f"{raw_csv:,}",
        "1.00x",
        f"{raw_csv / raw_mem:.2f}x",
    )
    if r["raw_csv_int_rows_s"]:
        raw_int = r["raw_csv_int_rows_s"]
        table.add_row(
            "raw onnxruntime + np.loadtxt as int32 (1 thread)",
            f"{raw_int:,}",
            f"{raw_int:,}",
            f"{raw_int / raw_csv:.2f}x",
            f"{raw_int / raw_mem:.2f}x",
        )
    per = r["maas_rows_s"] / r["workers"]
    table.add_row(
        f"maas batch --workers {r['workers']} ({r['shards']} shards)",
        f"{r['maas_rows_s']:,}",
        f"{per:,.0f}",
        f"{r['per_worker_vs_raw_csv']:.2f}x",
        f"{r['per_worker_vs_raw_memory']:.2f}x",
    )
    console.print(table)
    if r["raw_csv_int_rows_s"]:
        console.print(
            f"per worker vs raw reading integers: {r['per_worker_vs_raw_csv_int']:.2f}x "
            "(maas batch reads blocks of whole numbers as integers too)"
        )
    console.print(
        f"maas batch: {r['maas_seconds']} s from the command's start, {r['maas_inner_seconds']} s "
        "from its plan to its combined output (the rest: the CLI's imports and model load)"
    )
    console.print(
        f"output equal to raw onnxruntime row for row: max |diff| {r['max_abs_diff']:.1e}; "
        f"peak RSS per worker {r['peak_rss_mb']} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-mb", type=int, default=128)
    parser.add_argument(
        "--values", choices=("int", "float"), default="int", help="pixels as 0-255 or 0.0000-1.0000"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    result = run(args.rows, args.workers, args.shard_mb, args.values, Console())
    if args.out:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
