"""A store in an S3 bucket (or any S3 API endpoint, named by AWS_ENDPOINT_URL_S3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.core import digests
from functions.core.errors import ObjectExists, ObjectNotFound, StoreUnavailable

_MISSING = {"NoSuchKey", "404", "NotFound"}
_TAKEN = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
# Short timeouts and few retries: a caller waiting on a model gets a clear 503 quickly.
CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}
)


# Large artifacts: ranged GETs (and multipart uploads) of PART bytes, WORKERS at a time.
PARALLEL_FROM = 16 << 20
PART = 8 << 20
WORKERS = 8


class _HashingSink:
    """A write-only file that hashes what it is given. Not seekable, so s3transfer writes the
    parts of a ranged download in order: the digest is the object's, computed in one pass."""

    def __init__(self, handle: IO[bytes], digest: digests.Digest) -> None:
        self.handle = handle
        self.digest = digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def seekable(self) -> bool:
        return False


# Publishing large artifacts: completing a multipart upload of gigabytes can take S3 (and moto)
# well past the serving path's 20 s read timeout.
UPLOAD_CONFIG = CLIENT_CONFIG.merge(Config(read_timeout=600, retries={"max_attempts": 5}))


def _transfer_config(part_bytes: int) -> Any:
    """s3transfer's settings: objects from PARALLEL_FROM bytes in parts, WORKERS at a time."""
    from s3transfer.manager import TransferConfig

    return TransferConfig(
        multipart_threshold=PARALLEL_FROM,
        multipart_chunksize=part_bytes,
        max_request_concurrency=WORKERS,
    )


def make_client(service: str, config: Config = CLIENT_CONFIG) -> Any:
    """A botocore client (what boto3.client returns), without importing boto3 and s3transfer.

    The API function never uploads through s3transfer; skipping boto3 saves ~70 ms of cold start.
    The environment (AWS_ENDPOINT_URL_S3, region, credentials) is honoured as boto3 would.
    """
    import botocore.session

    return botocore.session.get_session().create_client(service, config=config)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Objects under `s3://bucket/prefix`; boto3 reads the endpoint from the environment."""

    def __init__(
        self, *, bucket: str, prefix: str = "", client: Any = None, part_bytes: int | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or make_client("s3")
        self.part_bytes = part_bytes or PART
        self._uploader: Any = client  # made on first upload, with publishing's timeouts

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

    def download(
        self, key: str, dest: Path, size: int | None = None, algorithm: str = "sha256"
    ) -> str:
        """Stream the object into `dest`, hashing it as it arrives; return its digest.

        Objects of `PARALLEL_FROM` bytes or more come in `part_bytes` ranged GETs, `WORKERS` at
        a time, through s3transfer (boto3's transfer library: retries a part whose stream
        breaks); the parts are written, and hashed, in order. Smaller ones are one GET, without
        importing s3transfer (~20 ms the API function's cold start need not pay).
        """
        with dest.open("wb") as handle:
            sink = _HashingSink(handle, digests.new(algorithm))
            try:
                if size is not None and size >= PARALLEL_FROM:
                    self._ranged(key, sink, size)
                else:
                    body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
                    for chunk in body.iter_chunks(1 << 20):
                        sink.write(chunk)
            except (ClientError, BotoCoreError) as exc:
                raise self._fail(exc, key) from None
        return sink.digest.hexdigest()

    def _ranged(self, key: str, sink: _HashingSink, size: int) -> None:
        from s3transfer.exceptions import RetriesExceededError
        from s3transfer.manager import TransferManager
        from s3transfer.subscribers import BaseSubscriber

        class Size(BaseSubscriber):  # the manifest gives the size: no HEAD request
            def on_queued(self, future: Any, **kwargs: Any) -> None:
                future.meta.provide_transfer_size(size)

        with TransferManager(self.client, _transfer_config(self.part_bytes)) as manager:
            future = manager.download(self.bucket, self._key(key), sink, subscribers=[Size()])  # type: ignore[arg-type]
            try:
                future.result()
            except RetriesExceededError as exc:
                raise StoreUnavailable(f"S3 download of {key} kept failing: {exc}") from None

    def upload(self, key: str, source: Path) -> None:
        """Upload the file `source`: one PUT, or a parallel multipart upload when it is large
        (parts of `PART` bytes or more, at most S3's 10,000 of them)."""
        from s3transfer.manager import TransferManager

        config = _transfer_config(max(self.part_bytes, -(-source.stat().st_size // 10_000)))
        if self._uploader is None:
            self._uploader = make_client("s3", UPLOAD_CONFIG)
        try:
            with TransferManager(self._uploader, config) as manager:
                manager.upload(str(source), self.bucket, self._key(key)).result()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None

    def local_file(self, key: str) -> None:
        """None: an object in S3 must be downloaded."""
        return None

    def reconnect(self) -> None:
        """A new client: credentials and connections as the environment gives them now."""
        self.client = make_client("s3")
        self._uploader = None

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
