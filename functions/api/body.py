"""Reading a request body within the size limit: one reader for every ASGI path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .wire import too_large_error

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole body; PayloadTooLarge as soon as its declared or actual size passes `limit`."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large_error(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large_error(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
