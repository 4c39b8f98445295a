"""Body limits and the binary header, for every inference path."""

from __future__ import annotations

from functions.core.errors import InvalidInput, PayloadTooLarge


def too_large_error(limit: int) -> PayloadTooLarge:
    """The 413 error naming the limit and its setting."""
    return PayloadTooLarge(
        f"request body is larger than the limit of {limit} bytes (MAAS_MAX_BODY_BYTES)"
    )


def too_large(size: int, limit: int) -> None:
    """Raise 413's error when a body of `size` bytes passes `limit`."""
    if size > limit:
        raise too_large_error(limit)


def parse_header_length(value: str | None) -> int | None:
    """Inference-Header-Content-Length as an integer, None when absent."""
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length must be an integer, got {value!r}")
    return int(value)
