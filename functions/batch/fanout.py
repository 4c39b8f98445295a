"""Scoring a file in shards: one shard's work, and the step that combines the shards' parts.

The same functions run in a Step Functions Distributed Map (`functions.batch.shard_handler`,
parts on S3) and in `maas batch --workers N` (parts in a local folder, one process a worker).
A shard's outcome is a small JSON document (`ShardResult`): its rows and, for text, its lines
on success; on a fault that no retry can fix, the reason and the line of the shard it is on.
The combining step writes one output only when every shard succeeded; otherwise it writes
nothing at the output key and returns an error naming each failed shard's rows or lines.
"""

from __future__ import annotations

import io
import multiprocessing
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from functions.core.manifest import Manifest
from functions.core.runner import Runner
from functions.core.sessions import usable_cpus

from .faults import is_permanent
from .formats import FormatError, Lines, NpzWriter, output_suffix, read_chunks
from .job import run_chunks, unbounded
from .shards import OpenRange, Plan, Shard, Window, plan_shards, read_shard

ShardResult = dict[str, Any]
LISTED = 5  # failures named in an error message; the rest are counted


def run_shard(
    plan: Plan,
    shard: Shard,
    *,
    runner: Runner,
    open_range: OpenRange,
    out: Path,
    chunk_rows: int,
    budget: Callable[[], float | None] = unbounded,
    read_ahead: bool = True,
) -> ShardResult:
    """Score one shard into `out`; its result. A transient fault is raised (to be retried)."""
    lines = Lines()
    started = time.perf_counter()
    result: ShardResult = {"index": shard.index}
    try:
        chunks = read_shard(plan, shard, runner.manifest.inputs, chunk_rows, open_range, lines)
        stats = run_chunks(
            chunks,
            suffix=plan.suffix,
            runner=runner,
            out=out,
            budget=budget,
            read_ahead=read_ahead,
        )
    except Exception as exc:
        if not is_permanent(exc):
            raise
        result |= {"status": "error", "kind": type(exc).__name__, "error": str(exc)}
        if isinstance(exc, FormatError) and exc.line is not None:
            result |= {"line": exc.line - plan.header_lines, "detail": exc.detail}
        return result
    lines_read = max(0, lines.count - plan.header_lines)
    result |= {"status": "ok", "rows": stats.rows, "lines": lines_read}
    # the process's peak so far (a worker scores shard after shard): bounded by the chunks
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result | {"seconds": round(time.perf_counter() - started, 3), "peak_rss_mb": peak_mb}


def failure(plan: Plan, results: Sequence[ShardResult | None]) -> str | None:
    """None when every shard succeeded; else the error, naming each failed shard's rows.

    A text shard's line is renumbered to the file's when every shard before it succeeded
    (their line counts are known); otherwise the line is given within the shard's bytes.
    """
    failed = [i for i, r in enumerate(results) if r is None or r.get("status") != "ok"]
    if not failed:
        return None
    reasons = []
    for index in failed[:LISTED]:
        result, shard = results[index], plan.shards[index]
        start, end = shard.span
        where = f"shard {index + 1} of {len(plan.shards)} (bytes {start:,}-{end - 1:,}"
        where += f", rows {shard.rows[0]:,}-{shard.rows[1] - 1:,})" if shard.rows else ")"
        if result is None:
            reasons.append(f"{where}: no result (its worker failed past its retries)")
        elif result.get("line") is not None:
            if index == failed[0]:  # every shard before it succeeded: their lines are known
                before = sum(int(r["lines"]) for r in results[:index] if r)
                number = plan.header_lines + before + int(result["line"])
                reasons.append(f"{where}: line {number:,}{result['detail']}")
            else:
                reasons.append(f"{where}: line {result['line']:,} of the shard{result['detail']}")
        else:
            reasons.append(f"{where}: {result.get('error')}")
    more = f"; and {len(failed) - LISTED} more" if len(failed) > LISTED else ""
    kept = len(plan.shards) - len(failed)
    return (
        f"{len(failed)} of {len(plan.shards)} shards failed, so the output is withheld "
        f"({kept} shards' parts are kept): " + "; ".join(reasons) + more
    )


def combine(
    plan: Plan, manifest: Manifest, parts: Iterable[Path], out: Path, chunk_rows: int
) -> int:
    """Join the shards' parts, in order, into one output file; its rows."""
    rows = 0
    fmt = output_suffix(plan.suffix, manifest.outputs)
    if fmt == ".parquet":  # record batches copied as they are, no arrays in between
        from .parquet import combine_parquet

        return combine_parquet(iter(parts), out)
    if fmt == ".jsonl":
        with out.open("wb") as target:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(1 << 20):
                        target.write(block)
                        rows += block.count(b"\n")
        return rows
    writer = NpzWriter(out)
    try:
        for part in parts:
            with zipfile.ZipFile(part) as archive:
                if not archive.namelist():  # a shard with no rows (a blank stretch of text)
                    continue
            with part.open("rb") as source:
                for chunk in read_chunks(source, ".npz", manifest.outputs, chunk_rows):
                    writer.write(chunk)
                    rows += len(next(iter(chunk.values())))
    finally:
        writer.close()
    return rows


# --- locally: `maas batch FILE --workers N` ------------------------------------------------------


def score_locally(
    file: Path,
    *,
    runner: Runner,
    store: str,
    workers: int,
    out: Path,
    chunk_rows: int,
    shard_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Plan, list[ShardResult], int]:
    """Plan `file`, score its shards in `workers` processes, combine: (plan, results, rows).

    Raises FormatError naming the failed shards (the output is withheld, as on AWS). Each
    worker process builds its own runtime from `store` with an equal share of the CPUs.
    """
    size = file.stat().st_size
    suffix = file.suffix.lower()
    if size == 0:
        raise FormatError("the file is empty")
    # As many shards as a whole number of rounds of the workers: none idles through the last
    count = -(-size // max(1, shard_bytes))
    count = -(-count // workers) * workers
    shard_bytes = max(1024, -(-size // count))
    with file.open("rb") as handle:
        plan = plan_shards(handle, size, suffix, runner.manifest.inputs, shard_bytes)
    manifest = runner.manifest
    threads = max(1, usable_cpus() // workers)
    context = multiprocessing.get_context("spawn")  # no forked onnxruntime thread pools
    with (
        tempfile.TemporaryDirectory(prefix=".maas-shards-", dir=out.parent) as tmp,
        ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(store, threads, plan.head()),
        ) as pool,
    ):
        parts = [Path(tmp) / f"part-{s.index:05d}" for s in plan.shards]
        futures = [
            pool.submit(
                _local_shard,
                (str(file), s.to_json(), manifest.name, manifest.version),
                str(part),
                chunk_rows,
                threads > 1,  # read ahead only with a core to spare
            )
            for s, part in zip(plan.shards, parts, strict=True)
        ]
        results: list[ShardResult] = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(len(results), len(futures))
        if (message := failure(plan, results)) is not None:
            raise FormatError(message)
        rows = combine(plan, manifest, parts, out, chunk_rows)
        if rows == 0:
            out.unlink()
            raise FormatError("the file has no rows")
    return plan, results, rows


_head: Plan | None = None  # a worker process's plan, without the shards (sent once, not per task)


def _init_worker(store: str, threads: int, head: dict[str, Any]) -> None:
    from functions.runtime import build_runtime, set_runtime
    from functions.settings import Settings
    from functions.telemetry import Telemetry

    global _head
    _head = Plan.from_json(head)
    settings = Settings(store=store, intra_op_threads=threads)
    set_runtime(build_runtime(settings, telemetry=Telemetry(stream=sys.stderr)))


def _local_shard(
    task: tuple[str, dict[str, Any], str, int],
    out: str,
    chunk_rows: int,
    read_ahead: bool,
) -> ShardResult:
    from functions.runtime import get_runtime

    file, shard_doc, model, version = task
    assert _head is not None  # set by _init_worker
    runner = get_runtime().registry.runner(model, str(version))
    with open(file, "rb") as handle:

        def open_range(start: int, end: int) -> IO[bytes]:
            return io.BufferedReader(Window(handle, start, end), 1 << 20)

        return run_shard(
            _head,
            Shard.from_json(shard_doc),
            runner=runner,
            open_range=open_range,
            out=Path(out),
            chunk_rows=chunk_rows,
            read_ahead=read_ahead,
        )
