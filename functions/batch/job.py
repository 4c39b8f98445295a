"""One batch job: a file through a runner, chunk by chunk, into an output file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from functions.core.runner import Runner

from .formats import Chunk, FormatError, JsonlWriter, NpzWriter, output_suffix, read_chunks


@dataclass(frozen=True)
class JobStats:
    """What a job did."""

    rows: int
    chunks: int
    output_format: str
    seconds: float


def unbounded() -> float | None:
    """No time budget (a local job)."""
    return None


def run_job(
    stream: IO[bytes],
    *,
    suffix: str,
    runner: Runner,
    out: Path,
    chunk_rows: int,
    budget: Callable[[], float | None] = unbounded,
) -> JobStats:
    """Read `stream` as `suffix`, run every chunk, write predictions to `out` (.npz or .jsonl).

    `budget()` is asked before each chunk for the seconds its run may take (on Lambda: what
    remains of the invocation); the watchdog stops a chunk that outlives it.
    """
    chunks = read_chunks(stream, suffix, runner.manifest.inputs, chunk_rows)
    stats = run_chunks(chunks, suffix=suffix, runner=runner, out=out, budget=budget)
    if stats.rows == 0:
        raise FormatError("the file has no rows")
    return stats


def run_chunks(
    source: Iterator[Chunk],
    *,
    suffix: str,
    runner: Runner,
    out: Path,
    budget: Callable[[], float | None] = unbounded,
) -> JobStats:
    """Run every chunk of `source` (read from a `suffix` file), predictions to `out`."""
    started = time.perf_counter()
    fmt = output_suffix(suffix, runner.manifest.outputs)
    writer = NpzWriter(out) if fmt == ".npz" else JsonlWriter(out)
    rows = chunks = 0
    # Read ahead by one chunk on a second thread: the read (network, decoding) overlaps with
    # onnxruntime's run, which releases the GIL. At most two chunks are in memory at once.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="maas-read") as reader:
        pending = reader.submit(next, source, None)
        try:
            while (chunk := pending.result()) is not None:
                pending = reader.submit(next, source, None)
                writer.write(runner.run(list(chunk.items()), timeout=budget()))
                rows += len(next(iter(chunk.values())))
                chunks += 1
        finally:
            pending.cancel()
            writer.close()
    return JobStats(
        rows=rows, chunks=chunks, output_format=fmt, seconds=time.perf_counter() - started
    )
