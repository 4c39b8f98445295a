"""Shard plans: a batch file cut into byte ranges that score independently, in any order.

A plan reads only what it must: a text file's header and, at each cut, the rest of one line (a
cut falls on the next line break); an array's header (`.npy`) or a zip archive's directory and
its members' headers (`.npz`). Each shard is then read with one ranged read per array (or one
for a text file) by `read_shard`, which hands the same chunk readers the inline job uses a
window of the file: a shard scores exactly as the whole file would, row for row.

Text files are cut at line breaks, so a `.csv` row must not span lines (a quoted field with a
line break in it): a cut inside one gives that shard a malformed row and an error record.
Compressed `.npz` members cannot be read from the middle; such files are refused for sharding
(save them with `np.savez`, which stores). A `.parquet` file is cut between row groups (its
footer lists them): a shard reads the footer and its row groups' bytes, two ranged reads.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import prod
from typing import IO, Any

import numpy as np

from functions.core.manifest import TensorSpec

from .formats import (
    Chunk,
    FormatError,
    Lines,
    npy_body,
    npy_header,
    npz_members,
    read_chunks,
    zip_rows,
)


class NotShardable(FormatError):
    """A file that cannot be cut (a compressed .npz): scored whole, if it fits one invocation."""


# Open bytes [start, end) of the input file as a stream.
OpenRange = Callable[[int, int], IO[bytes]]
_ZIP_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local header: 30 bytes


@dataclass(frozen=True)
class Shard:
    """One shard: byte ranges of the file (one per array; one for text) and its row range.

    `rows` is known from the plan for arrays; for text it is learnt as the shard is read.
    """

    index: int
    ranges: dict[str, tuple[int, int]]
    rows: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able item (a Distributed Map item, a worker's argument)."""
        ranges = {name: list(span) for name, span in self.ranges.items()}
        return {"index": self.index, "ranges": ranges, "rows": list(self.rows or []) or None}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Shard:
        """The inverse of `to_json`."""
        ranges = {str(n): (int(a), int(b)) for n, (a, b) in doc["ranges"].items()}
        rows = doc.get("rows")
        return cls(int(doc["index"]), ranges, (int(rows[0]), int(rows[1])) if rows else None)

    @property
    def span(self) -> tuple[int, int]:
        """The bytes it reads: first and last byte (+1) over all its ranges."""
        return min(a for a, _ in self.ranges.values()), max(b for _, b in self.ranges.values())


@dataclass(frozen=True)
class Plan:
    """How a file is cut: its type, what every shard needs of its head, and the shards."""

    suffix: str
    size: int
    shards: tuple[Shard, ...]
    header: str = ""  # .csv: the header line every shard reads first
    arrays: tuple[tuple[str, tuple[int, ...], str], ...] = ()  # .npy/.npz: name, shape, dtype
    footer: int = 0  # .parquet: where the footer (the file's metadata) starts

    @property
    def rows(self) -> int | None:
        """The file's rows when the plan knows them (arrays, Parquet)."""
        if self.suffix == ".parquet":
            return self.shards[-1].rows[1] if self.shards and self.shards[-1].rows else 0
        return self.arrays[0][1][0] if self.arrays else None

    @property
    def header_lines(self) -> int:
        """Lines a shard reads before its own: the .csv header's."""
        return 1 if self.header else 0

    def head(self) -> dict[str, Any]:
        """What a shard needs besides its own item: the plan without its shards, which a
        Distributed Map's children get one by one (items), not each all of them."""
        return {
            "suffix": self.suffix,
            "size": self.size,
            "header": self.header,
            "arrays": [[n, list(shape), dtype] for n, shape, dtype in self.arrays],
            "footer": self.footer,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able document: the head and the shards."""
        return self.head() | {"shards": [s.to_json() for s in self.shards]}

    @classmethod
    def from_json(cls, doc: dict[str, Any], shards: list[dict[str, Any]] | None = None) -> Plan:
        """The inverse of `to_json`; or of `head`, with the shards given apart (or none)."""
        return cls(
            suffix=str(doc["suffix"]),
            size=int(doc["size"]),
            shards=tuple(Shard.from_json(s) for s in doc.get("shards", shards or [])),
            header=str(doc.get("header", "")),
            arrays=tuple((str(n), tuple(shape), str(d)) for n, shape, d in doc["arrays"]),
            footer=int(doc.get("footer", 0)),
        )


def plan_shards(
    handle: IO[bytes], size: int, suffix: str, inputs: tuple[TensorSpec, ...], shard_bytes: int
) -> Plan:
    """Cut a seekable file of `size` bytes into shards of about `shard_bytes` each."""
    if suffix in (".csv", ".jsonl"):
        return _plan_text(handle, size, suffix, shard_bytes)
    if suffix == ".npy":
        if len(inputs) != 1:
            names = ", ".join(repr(s.name) for s in inputs)
            raise FormatError(f"a .npy file feeds one input; this model takes {names}: use .npz")
        shape, dtype = npy_header(handle, "the .npy file")
        array = (inputs[0].name, shape, dtype, handle.tell())
        return _plan_arrays(size, suffix, [array], shard_bytes)
    if suffix == ".npz":
        return _plan_arrays(size, suffix, _npz_arrays(handle, inputs), shard_bytes)
    if suffix == ".parquet":
        from .parquet import plan_parquet

        footer, cuts = plan_parquet(handle, size, inputs, shard_bytes)
        shards = tuple(Shard(i, {"": span}, rows) for i, (span, rows) in enumerate(cuts))
        return Plan(suffix, size, shards, footer=footer)
    raise FormatError(f"unsupported file type {suffix!r} for sharding")


def _plan_text(handle: IO[bytes], size: int, suffix: str, shard_bytes: int) -> Plan:
    header = b""
    if suffix == ".csv":
        header = handle.readline()
        if not header.endswith(b"\n"):
            raise FormatError("the .csv file has a header and no rows")
    start, cuts = len(header), []
    while start < size:
        handle.seek(min(start + shard_bytes, size) - 1)
        handle.readline()  # to the end of the line the cut falls in
        end = min(handle.tell(), size)
        cuts.append((start, end))
        start = end
    shards = tuple(Shard(i, {"": span}) for i, span in enumerate(cuts))
    try:
        text = header.decode()
    except UnicodeDecodeError as exc:
        raise FormatError(f"the .csv header is not UTF-8 text: {exc}") from None
    return Plan(suffix, size, shards, header=text)


def _npz_arrays(
    handle: IO[bytes], inputs: tuple[TensorSpec, ...]
) -> list[tuple[str, tuple[int, ...], np.dtype[Any], int]]:
    """Each input's array in a stored .npz: its shape, dtype and where its data starts."""
    try:
        archive = zipfile.ZipFile(handle)
    except zipfile.BadZipFile as exc:
        raise FormatError(f"the .npz file is not a zip archive: {exc}") from None
    arrays = []
    for name, member in npz_members(archive, inputs).items():
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise NotShardable(
                f"array '{name}' of the .npz file is compressed, so it cannot be read from the "
                "middle: save it with np.savez (not savez_compressed) to score it in shards"
            )
        handle.seek(info.header_offset)
        try:
            fields = _ZIP_LOCAL_HEADER.unpack(handle.read(_ZIP_LOCAL_HEADER.size))
        except struct.error:
            fields = (b"",)
        if fields[0] != b"PK\x03\x04":
            raise FormatError(f"array '{name}' of the .npz file has a broken zip header")
        handle.seek(info.header_offset + _ZIP_LOCAL_HEADER.size + fields[-2] + fields[-1])
        shape, dtype = npy_header(handle, f"array '{name}' of the .npz file")
        arrays.append((name, shape, dtype, handle.tell()))
    if len({shape[0] for _, shape, _, _ in arrays}) > 1:
        raise FormatError("the .npz arrays have different numbers of rows")
    return arrays


def _plan_arrays(
    size: int,
    suffix: str,
    arrays: list[tuple[str, tuple[int, ...], np.dtype[Any], int]],
    shard_bytes: int,
) -> Plan:
    total = arrays[0][1][0]
    row_bytes = {name: prod(shape[1:]) * dtype.itemsize for name, shape, dtype, _ in arrays}
    step = max(1, shard_bytes // max(1, sum(row_bytes.values())))
    shards = []
    for index, first in enumerate(range(0, total, step)):
        last = min(first + step, total)
        ranges = {
            name: (offset + first * row_bytes[name], offset + last * row_bytes[name])
            for name, _, _, offset in arrays
        }
        shards.append(Shard(index, ranges, (first, last)))
    described = tuple((n, s, d.str) for n, s, d, _ in arrays)
    return Plan(suffix, size, tuple(shards), arrays=described)


def read_shard(
    plan: Plan,
    shard: Shard,
    inputs: tuple[TensorSpec, ...],
    chunk_rows: int,
    open_range: OpenRange,
    lines: Lines,
) -> Iterator[Chunk]:
    """The shard's chunks, read through the inline job's readers (`lines`: text lines read)."""
    if plan.suffix in (".csv", ".jsonl"):
        start, end = shard.ranges[""]
        body = open_range(start, end)
        stream: IO[bytes] = body
        if plan.header:
            stream = io.BufferedReader(_Joined(plan.header.encode(), body), 1 << 20)
        yield from read_chunks(stream, plan.suffix, inputs, chunk_rows, lines)
        return
    assert shard.rows is not None
    if plan.suffix == ".parquet":
        from .parquet import read_parquet_shard

        span = shard.ranges[""]
        footer, body = open_range(plan.footer, plan.size), open_range(*span)
        yield from read_parquet_shard(
            footer, plan.footer, body, span, plan.size, shard.rows, inputs, chunk_rows
        )
        return
    rows = shard.rows[1] - shard.rows[0]
    readers = {}
    for name, shape, descr in plan.arrays:
        dtype = np.dtype(descr)
        what = f"rows {shard.rows[0]}-{shard.rows[1] - 1} of array '{name}'"
        stream = open_range(*shard.ranges[name])
        readers[name] = npy_body(stream, (rows, *shape[1:]), dtype, chunk_rows, what)
    yield from zip_rows(readers)


class _Joined(io.RawIOBase):
    """A header's bytes, then a stream: a shard of a .csv read as a file of its own."""

    def __init__(self, head: bytes, body: IO[bytes]) -> None:
        self._head, self._body = memoryview(head), body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return _read_into(self._body, buffer)


class Seekable(io.RawIOBase):
    """A read-only file of `size` bytes whose subclass fills `readinto` from where it is."""

    def __init__(self, size: int) -> None:
        self._size, self._at = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at


class Window(io.RawIOBase):
    """Bytes [start, end) of a seekable file, as a stream (a local shard's ranged read)."""

    def __init__(self, handle: IO[bytes], start: int, end: int) -> None:
        self._handle, self._at, self._left = handle, start, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._handle.seek(self._at)  # windows of one file may be read in turns (.npz arrays)
        n = _read_into(self._handle, memoryview(buffer)[: min(len(buffer), self._left)])
        self._at += n
        self._left -= n
        return n


def _read_into(stream: IO[bytes], buffer: Any) -> int:
    """Fill `buffer` from `stream` without a copy where the stream can (files, buffered
    streams); bytes read."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    data = stream.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)
