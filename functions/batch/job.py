"""One batch job: a file through a runner, chunk by chunk, into an output file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from functions.core.runner import Runner

from .formats import FormatError, JsonlWriter, NpzWriter, output_suffix, read_chunks


@dataclass(frozen=True)
class JobStats:
    """What a job did."""

    rows: int
    chunks: int
    output_format: str
    seconds: float


def run_job(
    stream: IO[bytes], *, suffix: str, runner: Runner, out: Path, chunk_rows: int
) -> JobStats:
    """Read `stream` as `suffix`, run every chunk, write predictions to `out` (.npz or .jsonl)."""
    started = time.perf_counter()
    fmt = output_suffix(suffix, runner.manifest.outputs)
    writer = NpzWriter(out) if fmt == ".npz" else JsonlWriter(out)
    rows = chunks = 0
    try:
        for chunk in read_chunks(stream, suffix, runner.manifest.inputs, chunk_rows):
            outputs = runner.run(list(chunk.items()))
            writer.write(outputs)
            rows += len(next(iter(chunk.values())))
            chunks += 1
    finally:
        writer.close()
    if rows == 0:
        raise FormatError("the file has no rows")
    return JobStats(
        rows=rows, chunks=chunks, output_format=fmt, seconds=time.perf_counter() - started
    )
