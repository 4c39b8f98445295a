"""A store in an S3 bucket (or any S3 API endpoint, named by AWS_ENDPOINT_URL_S3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import ObjectExists, ObjectNotFound, StoreUnavailable

_MISSING = {"NoSuchKey", "404", "NotFound"}
_TAKEN = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
# Short timeouts and few retries: a caller waiting on a model gets a clear 503 quickly.
CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}
)


def make_client(service: str) -> Any:
    """A botocore client (what boto3.client returns), without importing boto3 and s3transfer.

    The API function never uploads through s3transfer; skipping boto3 saves ~70 ms of cold start.
    The environment (AWS_ENDPOINT_URL_S3, region, credentials) is honoured as boto3 would.
    """
    import botocore.session

    return botocore.session.get_session().create_client(service, config=CLIENT_CONFIG)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Objects under `s3://bucket/prefix`; boto3 reads the endpoint from the environment."""

    def __init__(self, *, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or make_client("s3")

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _fail(self, exc: Exception, key: str) -> Exception:
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in _MISSING:
                return ObjectNotFound(f"{self.uri}/{key} does not exist")
            if code in _TAKEN:
                return ObjectExists(f"{key} already exists")
            return StoreUnavailable(f"S3 {code or 'error'} on {key}: {exc}")
        return StoreUnavailable(f"S3 unreachable for {key}: {exc}")

    def read(self, key: str) -> bytes:
        """Return the object's bytes."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            data: bytes = body.read()
            return data
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None

    def write(self, key: str, data: bytes) -> None:
        """Create or replace the object."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None

    def create(self, key: str, data: bytes) -> None:
        """Create the object with a conditional write (If-None-Match: *)."""
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None

    def download(self, key: str, dest: Path) -> None:
        """Stream the object into `dest` in 1 MiB chunks."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with dest.open("wb") as handle:
                for chunk in body.iter_chunks(1 << 20):
                    handle.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None

    def list(self, prefix: str) -> Iterator[str]:
        """Yield keys under `prefix` (relative to the store's own prefix)."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, prefix) from None
