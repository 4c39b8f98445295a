"""Parquet batch files: read by row groups in chunks, predictions written as columns.

pyarrow is imported only here and only for .parquet files: the batch functions' asset carries it
(the `parquet` extra; infra/bundling.py), the API's does not. Columns feed inputs as a .csv's do:
a column named after each input (numbers for a `[-1]` or `[-1, 1]` input, a list of numbers per
row for a `[-1, d, ...]` input, strings or binary for a BYTES input), or one numeric column per
feature of a single `[-1, features]` input. Predictions: a column per output (a list per row for
outputs of rank 2 and more, flattened, their shape in the file's metadata).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from functions.core.codec import Array, decode_json
from functions.core.errors import InvalidInput
from functions.core.manifest import TensorSpec

from .formats import Chunk, FormatError, columns_misfit
from .shards import Seekable


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise FormatError(
            "this function reads no .parquet files: it was built without pyarrow (the "
            "project's 'parquet' extra, which the stack's batch functions carry)"
        ) from None
    return pa, pq


def open_parquet(stream: IO[bytes]) -> Any:
    """A pyarrow ParquetFile on a seekable stream; FormatError if it is not one."""
    pa, pq = _arrow()
    try:
        return pq.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FormatError(f"the .parquet file cannot be read: {exc}") from None


def parquet_columns(schema: Any, inputs: tuple[TensorSpec, ...]) -> dict[str, list[str]]:
    """Which columns feed which input (as `_csv_columns` for a .csv); FormatError if none fit."""
    pa, _ = _arrow()
    names = list(schema.names)
    if all(s.name in names for s in inputs):
        return {s.name: [s.name] for s in inputs}
    numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in schema.types)
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].datatype != "BYTES":
        if numeric and inputs[0].shape[1] in (-1, len(names)):
            return {inputs[0].name: names}
    raise columns_misfit(".parquet", names, inputs)


def parquet_chunks(
    stream: IO[bytes],
    inputs: tuple[TensorSpec, ...],
    chunk_rows: int,
    row_groups: list[int] | None = None,
    first_row: int = 0,
) -> Iterator[Chunk]:
    """The file's rows (or those of `row_groups`, whose first row is `first_row` of the file)
    as chunks of at most `chunk_rows` rows."""
    pa, _ = _arrow()
    file = open_parquet(stream)
    columns = parquet_columns(file.schema_arrow, inputs)
    wanted = list(dict.fromkeys(c for names in columns.values() for c in names))
    row = first_row
    try:
        batches = file.iter_batches(
            batch_size=chunk_rows, row_groups=row_groups, columns=wanted, use_threads=False
        )
        for batch in batches:
            yield {s.name: _input(batch, columns[s.name], s, row) for s in inputs}
            row += batch.num_rows
    except pa.ArrowException as exc:
        raise FormatError(f"rows from {row:,} of the .parquet file cannot be read: {exc}") from None


def _input(batch: Any, names: list[str], spec: TensorSpec, row: int) -> Array:
    pa, _ = _arrow()
    rows = f"rows {row:,}-{row + batch.num_rows - 1:,}"
    columns = [batch.column(n) for n in names]
    for name, column in zip(names, columns, strict=True):
        if column.null_count:
            first = row + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise FormatError(f"row {first:,} of the .parquet file: column '{name}' is null")
    try:
        if len(columns) > 1:  # one column per feature
            values = np.column_stack([c.to_numpy(zero_copy_only=False) for c in columns])
            return decode_json(spec.name, spec.datatype, list(values.shape), values)
        (column,) = columns
        kind = column.type
        if (
            pa.types.is_list(kind)
            or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)
        ):
            return _nested(column, spec)
        if spec.datatype == "BYTES":
            data = column.to_pylist()
            return decode_json(
                spec.name, "BYTES", [len(data), *([1] * (len(spec.shape) - 1))], data
            )
        values = column.to_numpy(zero_copy_only=False)
        shape = [len(values), *([1] * (len(spec.shape) - 1))]
        return decode_json(spec.name, spec.datatype, shape, values)
    except InvalidInput as exc:
        raise FormatError(f"{rows} of the .parquet file: {exc}") from None


def _nested(column: Any, spec: TensorSpec) -> Array:
    """A list column: one list of numbers per row, all as long, reshaped to the input's shape."""
    pa, _ = _arrow()
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
    else:
        lengths = np.diff(column.offsets.to_numpy())
        if len(lengths) and (lengths != lengths[0]).any():
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InvalidInput(
                f"input '{spec.name}' has lists of {int(lengths[0])} and {int(lengths[bad])} "
                "values; every row needs as many"
            )
        width = int(lengths[0]) if len(lengths) else 0
    flat = column.flatten().to_numpy(zero_copy_only=False)
    tail = list(spec.shape[1:])
    known = int(np.prod([d for d in tail if d != -1]))  # the static dims' product
    if tail.count(-1) == 1 and known:
        tail[tail.index(-1)] = width // known
    if prod(tail) != width or not tail:
        raise InvalidInput(
            f"input '{spec.name}' {list(spec.shape)} needs "
            f"{'rows of ' + str(prod(tail)) if tail else 'a number per row'}, the file has "
            f"lists of {width}"
        )
    return decode_json(spec.name, spec.datatype, [len(column), *tail], flat)


class ParquetWriter:
    """Predictions as a .parquet file: a column per output, a row group per chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: Any = None

    def write(self, outputs: dict[str, Array]) -> None:
        """Append one chunk's predictions."""
        pa, pq = _arrow()
        shapes = {n: list(a.shape[1:]) for n, a in outputs.items() if a.ndim > 2}
        table = pa.table({name: _column(array) for name, array in outputs.items()})
        if self._writer is None:
            meta = {f"maas.shape.{n}": orjson.dumps(s) for n, s in shapes.items()}
            schema = table.schema.with_metadata(meta) if meta else table.schema
            self._writer = pq.ParquetWriter(self.path, schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def write_batch(self, batch: Any) -> None:
        """Append a record batch as it is (the combining step: parts into one file)."""
        _, pq = _arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, batch.schema)
        self._writer.write_batch(batch)

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()


def _column(array: Array) -> Any:
    pa, _ = _arrow()
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype.kind in "OUS":
        if array.ndim > 1 and array.shape[1:] != (1,):
            raise FormatError(
                "text outputs of more than one value a row cannot be written as .parquet"
            )
        return pa.array(array.reshape(len(array), -1)[:, 0].tolist())
    if array.ndim == 1:
        return pa.array(array)
    width = prod(array.shape[1:])
    flat = pa.array(np.ascontiguousarray(array).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def combine_parquet(parts: Iterator[Path], out: Path) -> int:
    """Join the shards' .parquet parts, in order, into one file; its rows."""
    writer = ParquetWriter(out)
    rows = 0
    try:
        for part in parts:
            with part.open("rb") as handle:
                for batch in open_parquet(handle).iter_batches(use_threads=False):
                    writer.write_batch(batch)
                    rows += batch.num_rows
    finally:
        writer.close()
    return rows


# --- shards: row groups --------------------------------------------------------------------------


FOOTER_READ = 64 << 10  # Arrow's default footer read size


def plan_parquet(
    handle: IO[bytes], size: int, inputs: tuple[TensorSpec, ...], shard_bytes: int
) -> tuple[int, list[tuple[tuple[int, int], tuple[int, int]]]]:
    """Where a shard's read of the footer starts, and shards of whole row groups of about
    `shard_bytes`: each its bytes [start, end) and rows [first, last)."""
    file = open_parquet(handle)
    parquet_columns(file.schema_arrow, inputs)  # a file that does not fit fails here, once
    meta = file.metadata
    handle.seek(size - 8)
    (footer_length,) = struct.unpack("<I", handle.read(4))
    shards: list[tuple[tuple[int, int], tuple[int, int]]] = []
    row = 0
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        spans = []
        for c in range(group.num_columns):
            column = group.column(c)
            start = column.data_page_offset
            if column.has_dictionary_page and column.dictionary_page_offset:
                start = min(start, column.dictionary_page_offset)
            spans.append((start, start + column.total_compressed_size))
        span = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else (4, 4)
        rows = (row, row + group.num_rows)
        row += group.num_rows
        if shards and shards[-1][0][1] - shards[-1][0][0] < shard_bytes:
            (start, _), (first, _) = shards[-1]
            shards[-1] = ((start, span[1]), (first, rows[1]))
        else:
            shards.append((span, rows))
    # pyarrow reads the last 64 KiB at once to find the footer: a shard fetches them all
    return max(0, min(size - 8 - footer_length, size - FOOTER_READ)), shards


def read_parquet_shard(
    footer: IO[bytes],
    footer_start: int,
    body: IO[bytes],
    span: tuple[int, int],
    size: int,
    rows: tuple[int, int],
    inputs: tuple[TensorSpec, ...],
    chunk_rows: int,
) -> Iterator[Chunk]:
    """A shard's chunks from two ranged reads: the footer and the shard's row groups."""
    sparse = _Sparse(size, {footer_start: footer.read(), span[0]: body.read()})
    file = open_parquet(sparse)  # type: ignore[arg-type]
    first, groups, row = rows[0], [], 0
    for index in range(file.metadata.num_row_groups):
        if rows[0] <= row < rows[1]:
            groups.append(index)
        row += file.metadata.row_group(index).num_rows
    yield from parquet_chunks(sparse, inputs, chunk_rows, groups, first)  # type: ignore[arg-type]


class _Sparse(Seekable):
    """A file of `size` bytes of which only some stretches were fetched: what pyarrow reads
    of a shard (the footer, the shard's row groups)."""

    def __init__(self, size: int, stretches: dict[int, bytes]) -> None:
        super().__init__(size)
        self._stretches = sorted(stretches.items())

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._at)
        if n <= 0:
            return 0
        for start, data in self._stretches:
            if start <= self._at and self._at + n <= start + len(data):
                view = memoryview(data)[self._at - start : self._at - start + n]
                buffer[:n] = view
                self._at += n
                return n
        raise OSError(f"bytes {self._at}-{self._at + n} of the .parquet file were not fetched")
