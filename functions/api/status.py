"""The one table mapping domain errors to HTTP status codes (no web framework imported)."""

from __future__ import annotations

import logging

from functions.core.errors import (
    DeadlineExceeded,
    InvalidInput,
    MaasError,
    ManifestError,
    ModelNotFound,
    ModelUnavailable,
    PayloadTooLarge,
    StoreError,
    VersionNotFound,
)

log = logging.getLogger("maas.api")

STATUS: dict[type[MaasError], int] = {
    InvalidInput: 400,
    PayloadTooLarge: 413,
    ModelNotFound: 404,
    VersionNotFound: 404,
    ModelUnavailable: 503,
    ManifestError: 503,
    StoreError: 503,
    DeadlineExceeded: 504,
}


def status_of(exc: MaasError) -> int:
    """The status code for a domain error (the most specific entry wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
