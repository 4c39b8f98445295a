"""Batch file formats: chunked readers for .npy/.npz/.jsonl/.csv, writers for .npz/.jsonl.

Memory stays bounded by the chunk size whatever the file size: arrays are read row range by row
range from the stream, text formats line by line, and outputs are appended as chunks arrive.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice, repeat
from math import prod
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np

from functions.core.codec import Array, decode_json
from functions.core.errors import InvalidInput
from functions.core.manifest import TensorSpec
from functions.core.oip import dumps, instances_to_inputs, prediction_rows

if TYPE_CHECKING:
    from .parquet import ParquetWriter

FORMATS: Final = (".npy", ".npz", ".jsonl", ".csv", ".parquet")
Chunk = dict[str, Array]


class FormatError(InvalidInput):
    """An input file that cannot be read as its format, or does not fit the model.

    `at(line, detail)` names a line of a text file; a shard of a file, which cannot know its
    lines' numbers in the whole file, gives its own and the combining step renumbers them.
    """

    line: int | None = None
    detail: str = ""

    @classmethod
    def at(cls, line: int, detail: str) -> FormatError:
        """`line {line}{detail}`, with both kept for renumbering."""
        error = cls(f"line {line}{detail}")
        error.line, error.detail = line, detail
        return error


@dataclass
class Lines:
    """How many lines a text reader has consumed (its last line's number)."""

    count: int = 0


def output_suffix(suffix: str, outputs: tuple[TensorSpec, ...]) -> str:
    """Arrays in: .npz out, unless an output is BYTES (no streamable strings in .npz): .jsonl.
    Parquet in: Parquet out."""
    if suffix == ".parquet":
        return ".parquet"
    if suffix in (".npy", ".npz") and all(o.datatype != "BYTES" for o in outputs):
        return ".npz"
    return ".jsonl"


def open_writer(fmt: str, path: Path) -> JsonlWriter | NpzWriter | ParquetWriter:
    """The writer of predictions in `fmt` (an `output_suffix`)."""
    if fmt == ".parquet":
        from .parquet import ParquetWriter

        return ParquetWriter(path)
    return NpzWriter(path) if fmt == ".npz" else JsonlWriter(path)


def read_chunks(
    stream: IO[bytes],
    suffix: str,
    inputs: tuple[TensorSpec, ...],
    chunk_rows: int,
    lines: Lines | None = None,
) -> Iterator[Chunk]:
    """Yield dicts of input arrays of at most `chunk_rows` rows (`lines`: text files' lines)."""
    if suffix == ".npy":
        if len(inputs) != 1:
            names = ", ".join(repr(s.name) for s in inputs)
            raise FormatError(f"a .npy file feeds one input; this model takes {names}: use .npz")
        yield from _npy_chunks(stream, inputs[0].name, chunk_rows, "the .npy file")
    elif suffix == ".npz":
        yield from _npz_chunks(stream, inputs, chunk_rows)
    elif suffix == ".jsonl":
        yield from _jsonl_chunks(stream, inputs, chunk_rows, lines or Lines())
    elif suffix == ".csv":
        yield from _csv_chunks(stream, inputs, chunk_rows, lines or Lines())
    elif suffix == ".parquet":
        from .parquet import parquet_chunks

        yield from parquet_chunks(stream, inputs, chunk_rows)
    else:
        raise FormatError(f"unsupported file type {suffix!r}; use one of {', '.join(FORMATS)}")


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def npy_header(stream: IO[bytes], what: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    fmt = np.lib.format
    try:
        major, _minor = fmt.read_magic(stream)
        reader = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except ValueError as exc:
        raise FormatError(f"{what} is not a valid .npy array: {exc}") from None
    if dtype.hasobject:
        raise FormatError(
            f"{what} holds Python objects; only plain numeric or string arrays are read"
        )
    if fortran and len(shape) > 1:
        raise FormatError(f"{what} is in Fortran order; save it in C order (np.save default)")
    if not shape:
        raise FormatError(f"{what} is a scalar; batch files need one row per example")
    return tuple(shape), dtype


def _npy_rows(stream: IO[bytes], chunk_rows: int, what: str) -> Iterator[Array]:
    shape, dtype = npy_header(stream, what)
    yield from npy_body(stream, shape, dtype, chunk_rows, what)


def npy_body(
    stream: IO[bytes],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    chunk_rows: int,
    what: str,
) -> Iterator[Array]:
    """The rows of an array's data (after its header): `shape[0]` rows, `chunk_rows` at a time."""
    row_bytes = prod(shape[1:]) * dtype.itemsize
    done = 0
    while done < shape[0]:
        rows = min(chunk_rows, shape[0] - done)
        raw = _read_exactly(stream, rows * row_bytes)
        if len(raw) != rows * row_bytes:
            raise FormatError(
                f"{what} is truncated: {done + len(raw) // max(row_bytes, 1)} of {shape[0]} rows"
            )
        yield np.frombuffer(raw, dtype=dtype).reshape((rows, *shape[1:]))
        done += rows


def _npy_chunks(stream: IO[bytes], name: str, chunk_rows: int, what: str) -> Iterator[Chunk]:
    for array in _npy_rows(stream, chunk_rows, what):
        yield {name: array}


def _npz_chunks(
    stream: IO[bytes], inputs: tuple[TensorSpec, ...], chunk_rows: int
) -> Iterator[Chunk]:
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise FormatError(f"the .npz file is not a zip archive: {exc}") from None
    with archive:
        members = npz_members(archive, inputs)
        readers = {
            n: _npy_rows(archive.open(member), chunk_rows, f"array '{n}' of the .npz file")  # noqa: SIM115
            for n, member in members.items()
        }
        yield from zip_rows(readers)


def npz_members(archive: zipfile.ZipFile, inputs: tuple[TensorSpec, ...]) -> dict[str, str]:
    """Each input's member of an .npz archive; FormatError unless they match the inputs."""
    members = {Path(n).stem: n for n in archive.namelist() if n.endswith(".npy")}
    names = [s.name for s in inputs]
    missing = [n for n in names if n not in members]
    extra = sorted(set(members) - set(names))
    if missing or extra:
        raise FormatError(
            "the .npz arrays do not match the model's inputs: "
            + "; ".join(
                p
                for p in (
                    f"missing {', '.join(map(repr, missing))}" if missing else "",
                    f"unexpected {', '.join(map(repr, extra))}" if extra else "",
                )
                if p
            )
        )
    return {n: members[n] for n in names}


def zip_rows(readers: dict[str, Iterator[Array]]) -> Iterator[Chunk]:
    """Chunks of several arrays read side by side; FormatError if their row counts differ."""
    while True:
        chunk = {n: next(r, None) for n, r in readers.items()}
        present = {n for n, a in chunk.items() if a is not None}
        if not present:
            return
        sizes = {len(a) for a in chunk.values() if a is not None}
        if present != set(readers) or len(sizes) != 1:
            raise FormatError("the .npz arrays have different numbers of rows")
        yield {n: a for n, a in chunk.items() if a is not None}


@contextmanager
def _text(stream: IO[bytes], newline: str | None = None) -> Iterator[io.TextIOWrapper]:
    """The stream as UTF-8 text; the stream is left open (its owner closes it). Lines end at
    "\n", "\r\n" or "\r" either way; `newline=""` keeps each line's ending as written (what
    the csv module needs for line breaks inside quoted text), None gives "\n" for each: 1.9x
    faster to iterate, since CPython then looks for one character only."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline=newline)
    try:
        yield text
    finally:
        if not getattr(stream, "closed", False):  # closed after its file (a failed job): no-op
            text.detach()


def _jsonl_chunks(
    stream: IO[bytes], inputs: tuple[TensorSpec, ...], chunk_rows: int, lines: Lines
) -> Iterator[Chunk]:
    from functions.core.oip import loads

    rows: list[Any] = []
    numbers: list[int] = []
    try:
        with _text(stream) as text:
            for number, line in enumerate(text, start=1):
                lines.count = number
                if not line.strip():
                    continue
                try:
                    rows.append(loads(line.encode()))
                except InvalidInput as exc:
                    detail = str(exc).split(": ", 1)[-1]
                    raise FormatError.at(number, f" is not valid JSON: {detail}") from None
                numbers.append(number)
                if len(rows) == chunk_rows:
                    yield _rows_to_chunk(rows, inputs, numbers)
                    rows, numbers = [], []
    except UnicodeDecodeError as exc:
        raise FormatError(f"the .jsonl file is not UTF-8 text: {exc}") from None
    if rows:
        yield _rows_to_chunk(rows, inputs, numbers)


def _rows_to_chunk(rows: list[Any], inputs: tuple[TensorSpec, ...], numbers: list[int]) -> Chunk:
    try:
        return dict(instances_to_inputs(rows, inputs))
    except InvalidInput as exc:
        if len(rows) > 1:  # name the first row that fails on its own
            for row, number in zip(rows, numbers, strict=True):
                try:
                    instances_to_inputs([row], inputs)
                except InvalidInput as alone:
                    raise FormatError.at(number, f": {alone}") from None
        raise FormatError.at(numbers[0], f": {exc}") from None


def _csv_chunks(
    stream: IO[bytes], inputs: tuple[TensorSpec, ...], chunk_rows: int, lines: Lines
) -> Iterator[Chunk]:
    """A numeric feature matrix is parsed by numpy's C reader, block by block; anything it
    does not read (quotes, a bad field, other layouts) goes through the csv module from that
    block on, which also gives the exact error."""
    # Text read as written only where a model takes text: elsewhere every field is a number,
    # so how a line break inside quotes is written cannot change a value
    keep_endings = any(spec.datatype == "BYTES" for spec in inputs)
    try:
        with _text(stream, "" if keep_endings else None) as text:
            physical: Iterator[str] = iter(text)
            head = csv.reader(physical, strict=True)
            header = next(head, None)
            if header is None:
                raise FormatError("the .csv file is empty")
            done = head.line_num
            columns = _csv_columns(header, inputs)
            spec = inputs[0]
            fast = (
                len(inputs) == 1
                and len(spec.shape) == 2
                and spec.datatype != "BYTES"
                and columns[spec.name] == list(range(len(header)))
            )
            while fast:
                block = list(islice(physical, chunk_rows))
                chunk = _csv_fast(block, len(header), spec) if block else {}
                if chunk is None:
                    physical = chain(block, physical)
                    break
                if not block:
                    return
                done += len(block)
                lines.count = done
                if chunk:
                    yield chunk
            yield from _csv_rows(
                csv.reader(physical, strict=True), header, columns, inputs, chunk_rows, lines, done
            )
    except UnicodeDecodeError as exc:
        raise FormatError(f"the .csv file is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise FormatError(f"the .csv file is malformed: {exc}") from None


def _csv_fast(block: list[str], width: int, spec: TensorSpec) -> Chunk | None:
    """Lines of numbers, all `width` wide, as the input's chunk ({} if all blank); None where
    the csv module must read them (quotes, an empty or non-numeric field, a wrong width)."""
    kept = block
    if "\n" in block or "\r\n" in block:  # empty lines are no rows
        kept = [line for line in block if line not in ("\n", "\r\n")]
    if not kept:
        return {}
    # A quote anywhere (numpy reads it as part of a number, which then fails to parse) sends
    # the block to the csv module, which reads quoted fields
    # FP32 is parsed straight to float32: numpy reads each number as a double and rounds it
    # once, so the values equal the csv module's path (float64, then the input's cast). A
    # value that overflows float32 became inf here: such blocks go the exact way, which
    # refuses it (and keeps an infinity written as such)
    parsed = np.float32 if spec.datatype == "FP32" else np.float64
    try:
        values = _whole_numbers(kept, parsed)
        finite = values is not None  # integers are
        if values is None:
            values = np.loadtxt(kept, delimiter=",", dtype=parsed, ndmin=2, comments=None)
    except ValueError:
        return None
    # A line of spaces (a row of one field to the csv module) numpy refuses: the exact way
    if values.shape != (len(kept), width) or not (finite or np.isfinite(values).all()):
        return None
    if spec.datatype == "FP32":  # already the input's type
        return {spec.name: values}
    try:
        return {spec.name: decode_json(spec.name, spec.datatype, list(values.shape), values)}
    except InvalidInput:
        return None


def _whole_numbers(kept: list[str], parsed: type[np.floating[Any]]) -> Array | None:
    """Lines of whole numbers (pixels, counts, ids) read as 32-bit integers, 1.5x faster than
    as floats, then cast: the same values (each is exact as a double, which the float path
    rounds once, as the cast does). None where the block is not that: a '.', an exponent,
    nan or inf in its first line, a "-0" (-0.0 as a float), a non-integer or a value past
    32 bits anywhere."""
    if any(c in kept[0] for c in ".eEnN"):
        return None
    if any(map(str.__contains__, kept, repeat("-"))) and any("-0" in line for line in kept):
        return None
    try:
        whole = np.loadtxt(kept, delimiter=",", dtype=np.int32, ndmin=2, comments=None)
    except ValueError:
        return None
    return whole.astype(parsed)


def _csv_rows(
    reader: Any,
    header: list[str],
    columns: dict[str, list[int]],
    inputs: tuple[TensorSpec, ...],
    chunk_rows: int,
    lines: Lines,
    offset: int,
) -> Iterator[Chunk]:
    """Rows through the csv module (quoted fields, line breaks in them); `offset`: lines
    already read."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    for row in reader:
        number = offset + reader.line_num
        lines.count = number
        if not row:
            continue
        if len(row) != len(header):
            raise FormatError.at(number, f" has {len(row)} fields, the header has {len(header)}")
        rows.append(row)
        numbers.append(number)
        if len(rows) == chunk_rows:
            yield _csv_chunk(rows, columns, inputs, numbers)
            rows, numbers = [], []
    if rows:
        yield _csv_chunk(rows, columns, inputs, numbers)


def _csv_columns(header: list[str], inputs: tuple[TensorSpec, ...]) -> dict[str, list[int]]:
    """Which columns feed which input: a column per input by name, or all columns for one input."""
    if all(s.name in header for s in inputs) and all(
        len(s.shape) <= 2 and s.shape[1:] in ((), (1,)) for s in inputs
    ):
        return {s.name: [header.index(s.name)] for s in inputs}
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] in (-1, len(header)):
        return {inputs[0].name: list(range(len(header)))}
    raise columns_misfit(".csv", header, inputs)


def columns_misfit(kind: str, columns: list[str], inputs: tuple[TensorSpec, ...]) -> FormatError:
    """The error for a table (.csv, .parquet) whose columns feed none of the ways it can."""
    wanted = ", ".join(f"'{s.name}' {list(s.shape)}" for s in inputs)
    return FormatError(
        f"the {kind} columns {columns[:8]}{'...' if len(columns) > 8 else ''} do not fit the "
        f"model's inputs ({wanted}): use a column named after each input, or one numeric column "
        "per feature of a single [-1, features] input"
    )


def _csv_chunk(
    rows: list[list[str]],
    columns: dict[str, list[int]],
    inputs: tuple[TensorSpec, ...],
    numbers: list[int],
) -> Chunk:
    first = numbers[0]
    chunk: Chunk = {}
    for spec in inputs:
        picked = [[row[i] for i in columns[spec.name]] for row in rows]
        if spec.datatype != "BYTES":
            try:
                values: Any = np.asarray(picked, dtype=np.float64)
            except ValueError as exc:
                for number, row_values in zip(numbers, picked, strict=True):  # the first bad row
                    try:
                        np.asarray(row_values, dtype=np.float64)
                    except ValueError as alone:
                        raise FormatError.at(number, f", input '{spec.name}': {alone}") from None
                raise FormatError.at(first, f", input '{spec.name}': {exc}") from None
            data: list[Any] = values.tolist()
        else:
            data = picked
        shape = [len(rows), *([len(columns[spec.name])] if len(spec.shape) == 2 else [])]
        flat = [v for row in data for v in row]
        try:
            chunk[spec.name] = decode_json(spec.name, spec.datatype, shape, flat)
        except InvalidInput as exc:
            raise FormatError.at(first, f" (a chunk of {len(rows)} rows from it): {exc}") from None
    return chunk


class JsonlWriter:
    """Predictions as JSON lines: one value (or one object per output) per input row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("wb")

    def write(self, outputs: dict[str, Array]) -> None:
        """Append one chunk's predictions."""
        if len(outputs) == 1:
            (array,) = outputs.values()
            if array.ndim in (1, 2) and array.dtype.kind in "biuf" and len(array):
                # One numeric output: orjson writes the array at once (floats in their shortest
                # form for the array's type, as v2's JSON does), then rows become lines: in
                # "[[1,2],[3,4]]" only row boundaries read "],[", in "[1,2]" only values ","
                text = dumps(array)[1:-1]
                lines = (
                    text.replace(b"],[", b"]\n[") if array.ndim == 2 else text.replace(b",", b"\n")
                )
                self._handle.write(lines + b"\n")
                return
        rows = prediction_rows(outputs)
        if isinstance(rows, dict):
            raise FormatError("the model's outputs have different numbers of rows; use .npz")
        self._handle.write(b"".join(dumps(row) + b"\n" for row in rows))

    def close(self) -> None:
        """Finish the file."""
        self._handle.close()


class NpzWriter:
    """Named output arrays in an .npz, written chunk by chunk (each staged as its own .npy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._staged: dict[str, tuple[Path, Any, tuple[int, ...], np.dtype[Any]]] = {}
        self._rows = 0

    def write(self, outputs: dict[str, Array]) -> None:
        """Append one chunk's outputs."""
        for name, array in outputs.items():
            if name not in self._staged:
                staged = self.path.with_name(f"{self.path.name}.{len(self._staged)}.part")
                handle = staged.open("wb")
                self._staged[name] = (staged, handle, tuple(array.shape[1:]), array.dtype)
            _, handle, _, _ = self._staged[name]
            handle.write(np.ascontiguousarray(array).tobytes())
        self._rows += len(next(iter(outputs.values())))

    def close(self) -> None:
        """Write each staged array with its final header into the .npz."""
        with zipfile.ZipFile(
            self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True
        ) as archive:
            for name, (staged, handle, tail, dtype) in self._staged.items():
                handle.close()
                header = {
                    "descr": np.lib.format.dtype_to_descr(dtype),
                    "fortran_order": False,
                    "shape": (self._rows, *tail),
                }
                with (
                    archive.open(f"{name}.npy", "w", force_zip64=True) as member,
                    staged.open("rb") as body,
                ):
                    np.lib.format.write_array_header_2_0(member, header)
                    while block := body.read(1 << 20):
                        member.write(block)
                staged.unlink()
