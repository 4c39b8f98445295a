"""JSON bodies through simdjson: arrays stay undecoded until numpy reads them, values match orjson.

Every value handed out as Python equals what `orjson.loads` gives for the same bytes (the tests
compare the two on generated and mutated documents), so a body decodes the same either way.
Where simdjson cannot promise that, these functions return None and the caller asks orjson.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any, Final

import simdjson
from simdjson import Array, Object

__all__ = ["Array", "Object", "fields", "parse_object", "plain", "rows_shape"]

_BOM: Final = b"\xef\xbb\xbf"
# numpy calls rows past 64 dimensions ragged; past 32, which no model takes, the list path decides.
_MAX_DIMS: Final = 32


def parse_object(text: bytes | memoryview) -> Object | None:
    """The body's top-level object as a lazy proxy; None if it is not one, or orjson must judge."""
    if text[:3] == _BOM:  # simdjson skips a byte order mark that orjson refuses
        return None
    try:
        # A parser per call: one cannot be reused while any proxy of its last document lives on
        # (a traceback may hold one), and a fresh one costs well under a microsecond.
        root = simdjson.Parser().parse(text)
    except (ValueError, RuntimeError):  # orjson words the error, or holds what simdjson cannot
        return None
    return root if isinstance(root, Object) else None


def plain(value: Any) -> Any:
    """The Python value orjson gives for the same JSON (containers converted recursively)."""
    if isinstance(value, Object):
        return value.as_dict()
    if isinstance(value, Array):
        return value.as_list()
    return value


def fields(value: Any, names: AbstractSet[str], lazy: str = "") -> dict[str, Any] | None:
    """An object's fields among `names` as orjson gives them, an array under `lazy` left undecoded.

    None for a non-object, or one with a repeated key: orjson keeps the last of repeated keys,
    where simdjson's lookup finds the first.
    """
    if not isinstance(value, Object):
        return None
    keys = list(value)
    if len(set(keys)) != len(keys):
        return None
    found: dict[str, Any] = {}
    for key in keys:
        if key in names:
            field = value[key]
            found[key] = field if key == lazy and isinstance(field, Array) else plain(field)
    return found


def rows_shape(rows: Array, text: bytes) -> tuple[int, ...] | None:
    """The shape numpy gives nested `rows`, when `text` proves them rectangular; None otherwise.

    Each depth's lists must share one length and hold only lists, until a depth holds none; that
    last condition is read from the text: it may have no `[` beyond those of the lists walked.
    """
    shape: list[int] = []
    level: list[Array] = [rows]
    arrays = 1
    while True:
        length = len(level[0])
        if any(len(array) != length for array in level):
            return None
        shape.append(length)
        if length == 0 or not isinstance(level[0][0], Array):
            break
        children = [child for array in level for child in array if isinstance(child, Array)]
        if len(shape) == _MAX_DIMS or len(children) != len(level) * length:
            return None  # too deep for numpy, or lists beside numbers at one depth: ragged
        level = children
        arrays += len(level)
    return tuple(shape) if _brackets(text, arrays) == arrays else None


def _brackets(text: bytes, limit: int) -> int:
    """How many `[` bytes `text` holds, counting no further than `limit + 1`."""
    count, at = 0, text.find(b"[")  # find is memchr: far cheaper than a full count
    while at >= 0 and count <= limit:
        count += 1
        at = text.find(b"[", at + 1)
    return count
