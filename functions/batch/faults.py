"""Which failures are permanent (an error record) and which are transient (SQS retries them)."""

from __future__ import annotations

from functions.core.errors import (
    InvalidInput,
    MaasError,
    ModelNotFound,
    PayloadTooLarge,
    VersionNotFound,
)


class TransientFault(Exception):
    """Retry later: the item is reported as a batch item failure (then the DLQ)."""


class ObjectGone(MaasError):
    """The object no longer exists (deleted after its event): recorded, never retried."""


class ShardsFailed(MaasError):
    """Shards of a large input failed (a reason no retry changes, or past their retries)."""


class ObjectChanged(Exception):
    """The object was replaced since its event: the newer object's event will handle it."""


# Nothing about the file or the request will change on a retry: record the reason, acknowledge.
PERMANENT: tuple[type[MaasError], ...] = (
    InvalidInput,
    ModelNotFound,
    VersionNotFound,
    PayloadTooLarge,
    ObjectGone,  # a retry would find it gone too; a new upload brings its own event
)


def is_permanent(exc: BaseException) -> bool:
    """True for faults a retry cannot fix (the model store being down is not one of them)."""
    return isinstance(exc, PERMANENT)
