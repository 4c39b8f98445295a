"""The batch bucket on S3: conditional reads of inputs, writes of results (boto3)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, cast

import boto3
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from functions.stores.s3 import CLIENT_CONFIG

from .faults import ObjectChanged, ObjectGone, TransientFault
from .shards import Seekable


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class BatchBucket:
    """Reads inputs only as the event described them (If-Match on the ETag)."""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("s3", config=CLIENT_CONFIG)

    def _fault(self, exc: Exception, bucket: str, key: str) -> Exception:
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                return ObjectGone(f"s3://{bucket}/{key} no longer exists")
            if code in ("PreconditionFailed", "412"):
                return ObjectChanged(f"s3://{bucket}/{key} was replaced since its event")
            return TransientFault(f"S3 {code or 'error'} on s3://{bucket}/{key}: {exc}")
        return TransientFault(f"S3 unreachable for s3://{bucket}/{key}: {exc}")

    def open(self, bucket: str, key: str, etag: str) -> IO[bytes]:
        """A streaming body of the object, if it still has `etag`."""
        try:
            if etag:
                body = self.client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
            else:
                body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            return cast(IO[bytes], body)
        except (ClientError, BotoCoreError) as exc:
            raise self._fault(exc, bucket, key) from None

    def open_range(self, bucket: str, key: str, etag: str, start: int, end: int) -> IO[bytes]:
        """Bytes [start, end) of the object, if it still has `etag`, as a stream."""
        try:
            return cast(
                IO[bytes],
                self.client.get_object(
                    Bucket=bucket, Key=key, IfMatch=etag, Range=f"bytes={start}-{end - 1}"
                )["Body"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fault(exc, bucket, key) from None

    def unchanged(self, bucket: str, key: str, etag: str) -> bool:
        """False when the object was replaced since `etag` (a deleted one counts as unchanged:
        its event was handled, and no newer object's event will come)."""
        try:
            quoted = '"' + etag.strip('"') + '"'  # an HTTP entity tag is quoted
            self.client.head_object(Bucket=bucket, Key=key, IfMatch=quoted)
        except (ClientError, BotoCoreError) as exc:
            fault = self._fault(exc, bucket, key)
            if isinstance(fault, ObjectChanged):
                return False
            if isinstance(fault, ObjectGone):
                return True
            raise fault from None
        return True

    def seekable(self, bucket: str, key: str, etag: str, size: int) -> IO[bytes]:
        """The object as a seekable file that reads what is asked with ranged GETs (a plan)."""
        return io.BufferedReader(_Ranged(self, bucket, key, etag, size), 64 * 1024)

    def download(self, bucket: str, key: str, etag: str, dest: Path) -> None:
        """Copy the object to a local file (for formats that need to seek: .npz)."""
        body = self.open(bucket, key, etag)
        try:
            with dest.open("wb") as handle:
                while block := body.read(1 << 20):
                    handle.write(block)
        except (ClientError, BotoCoreError) as exc:
            raise self._fault(exc, bucket, key) from None

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        """A small JSON object, or None if absent."""
        doc = self._read_doc(bucket, key)
        return doc if isinstance(doc, dict) else None

    def read_items(self, bucket: str, key: str) -> list[Any] | None:
        """A JSON array (a Distributed Map's items), or None if absent."""
        doc = self._read_doc(bucket, key)
        return doc if isinstance(doc, list) else None

    def _read_doc(self, bucket: str, key: str) -> Any:
        try:
            return orjson.loads(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            fault = self._fault(exc, bucket, key)
            if isinstance(fault, ObjectGone):
                return None
            raise fault from None
        except orjson.JSONDecodeError:
            return None

    def put_json(self, bucket: str, key: str, doc: Any) -> None:
        """Write a small JSON object."""
        body = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        self._put(
            bucket,
            key,
            lambda: self.client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            ),
        )

    def upload(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        """Upload a result file (multipart when large)."""
        self._put(
            bucket,
            key,
            lambda: self.client.upload_file(
                str(path), bucket, key, ExtraArgs={"ContentType": content_type}
            ),
        )

    def _put(self, bucket: str, key: str, call: Any) -> None:
        try:
            call()
        except (ClientError, BotoCoreError) as exc:
            raise self._fault(exc, bucket, key) from None
        except Exception as exc:  # s3transfer wraps failures in its own types
            raise TransientFault(f"upload of s3://{bucket}/{key} failed: {exc}") from None


class _Ranged(Seekable):
    """A seekable, read-only view of an object: each read is a ranged GET (If-Match)."""

    def __init__(self, bucket: BatchBucket, name: str, key: str, etag: str, size: int) -> None:
        super().__init__(size)
        self._bucket, self._name, self._key, self._etag = bucket, name, key, etag

    def readinto(self, buffer: Any) -> int:
        end = min(self._size, self._at + len(buffer))
        if end <= self._at:
            return 0
        body = self._bucket.open_range(self._name, self._key, self._etag, self._at, end)
        try:
            data = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise self._bucket._fault(exc, self._name, self._key) from None
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)
