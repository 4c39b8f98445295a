"""Replies, and the one table mapping errors to them (no web framework imported).

Every path answers through `error_reply`: a domain error by its status in `STATUS`, anything
else a 500 `{"error": "internal error"}` logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import orjson

from functions.core.errors import (
    DeadlineExceeded,
    InferenceNotFound,
    InvalidInput,
    MaasError,
    ManifestError,
    ModelNotFound,
    ModelUnavailable,
    PayloadTooLarge,
    StoreError,
    VersionNotFound,
)
from functions.core.forwarding import Forwarded
from functions.telemetry import Telemetry

JSON = "application/json"
BINARY = "application/octet-stream"
INTERNAL_ERROR = "internal error"

STATUS: dict[type[MaasError], int] = {
    InvalidInput: 400,
    PayloadTooLarge: 413,
    ModelNotFound: 404,
    VersionNotFound: 404,
    InferenceNotFound: 404,
    ModelUnavailable: 503,
    ManifestError: 503,
    StoreError: 503,
    DeadlineExceeded: 504,
}


class Reply(NamedTuple):
    """Status, headers (lower case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def make_reply(status: int, body: bytes, media_type: str, extra: Mapping[str, str] = {}) -> Reply:
    """A reply with its content length and type."""
    headers = {**extra, "content-length": str(len(body)), "content-type": media_type}
    return Reply(status, headers, body)


def forwarded_reply(remote: Forwarded) -> Reply:
    """The reply for what the GPU endpoint (or its stored result) answered."""
    media = remote.headers.get("content-type", JSON)
    rest = {k: v for k, v in remote.headers.items() if k != "content-type"}
    return make_reply(remote.status, remote.body, media, rest)


def status_of(exc: MaasError) -> int:
    """The status code for a domain error (the most specific entry wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_reply(exc: BaseException, telemetry: Telemetry, **context: str) -> Reply:
    """`{"error": ...}` for any exception: the table's status, or a logged 500."""
    if isinstance(exc, MaasError):
        status, message = status_of(exc), str(exc)
    else:
        telemetry.unexpected(exc, **context)
        status, message = 500, INTERNAL_ERROR
    return make_reply(status, orjson.dumps({"error": message}), JSON)
