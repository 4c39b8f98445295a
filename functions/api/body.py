"""Reading request bodies within the size limit, without pydantic in the hot path."""

from __future__ import annotations

from fastapi import Request

from .wire import too_large_error


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused early (413) when its declared or actual size passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large_error(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large_error(limit)
        chunks.append(chunk)
    return b"".join(chunks)
