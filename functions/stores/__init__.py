"""Store backends behind the `functions.core.store.Store` protocol, and `open_store(uri)`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from functions.core.errors import MaasError
from functions.core.store import Store

from .local import LocalStore

DEFAULT_STORE = "file://./.maas/store"


class StoreURIError(MaasError):
    """A store URI that names no supported backend."""


def open_store(uri: str, *, part_bytes: int | None = None) -> Store:
    """Open `file:///path` (or a plain path) as a LocalStore and `s3://bucket/prefix` as S3Store.

    `part_bytes`: the size of an S3 store's ranged GETs and multipart parts (8 MiB if None).
    """
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreURIError(f"store URI {uri!r} names no bucket (expected s3://bucket/prefix)")
        from .s3 import S3Store  # boto3 only where S3 is used

        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), part_bytes=part_bytes)
    if parsed.scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        return LocalStore(Path(path or "."))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive)
        return LocalStore(Path(uri))
    raise StoreURIError(f"unsupported store URI {uri!r}: use file:///path or s3://bucket/prefix")


__all__ = ["DEFAULT_STORE", "LocalStore", "StoreURIError", "open_store"]
