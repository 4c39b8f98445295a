"""Reading request bodies within the size limit, without pydantic in the hot path."""

from __future__ import annotations

from fastapi import Request

from functions.core.errors import InvalidInput, PayloadTooLarge


def too_large_error(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than the limit of {limit} bytes (MAAS_MAX_BODY_BYTES)"
    )


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


def header_length(request: Request) -> int | None:
    """Triton's Inference-Header-Content-Length, if the body carries binary tensors."""
    return parse_header_length(request.headers.get("inference-header-content-length"))


def too_large(size: int, limit: int) -> None:
    """Raise 413's error when a body of `size` bytes passes `limit`."""
    if size > limit:
        raise too_large_error(limit)


def parse_header_length(value: str | None) -> int | None:
    """The header's value as an integer, None when absent; InvalidInput when malformed."""
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length must be an integer, got {value!r}")
    return int(value)
