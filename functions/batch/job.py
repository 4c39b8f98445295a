"""One batch job: a file through a runner, chunk by chunk, into an output file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from functions.core.runner import Runner

from .formats import Chunk, FormatError, open_writer, output_suffix, read_chunks


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
    """Read `stream` as `suffix`, run every chunk, write predictions to `out` (its format).

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
    read_ahead: bool = True,
) -> JobStats:
    """Run every chunk of `source` (read from a `suffix` file), predictions to `out`.

    `read_ahead`: read the next chunk on a second thread while this one runs (the read,
    network and decoding, overlaps with onnxruntime's run, which releases the GIL; at most two
    chunks in memory). Worth it only with a core to spare: processes that each have one core
    (`maas batch --workers` with as many workers as cores) read in turn instead.
    """
    started = time.perf_counter()
    fmt = output_suffix(suffix, runner.manifest.outputs)
    writer = open_writer(fmt, out)
    rows = chunks = 0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maas-read")
    with pool if read_ahead else nullcontext(pool) as reader:
        fetch = reader.submit if read_ahead else _now
        pending = fetch(next, source, None)
        try:
            while (chunk := pending.result()) is not None:
                pending = fetch(next, source, None)
                writer.write(runner.run(list(chunk.items()), timeout=budget()))
                rows += len(next(iter(chunk.values())))
                chunks += 1
        finally:
            pending.cancel()
            writer.close()
    return JobStats(
        rows=rows, chunks=chunks, output_format=fmt, seconds=time.perf_counter() - started
    )


def _now(call: Callable[..., Chunk | None], *args: object) -> Future[Chunk | None]:
    """`call(*args)` in this thread, as a finished future (no read-ahead)."""
    done: Future[Chunk | None] = Future()
    try:
        done.set_result(call(*args))
    except BaseException as exc:  # delivered by .result(), as the thread pool's would be
        done.set_exception(exc)
    return done
