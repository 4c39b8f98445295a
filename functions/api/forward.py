"""Forwarding to the SageMaker GPU endpoint: real-time InvokeEndpoint, or async via S3."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlparse

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import InferenceNotFound, ModelUnavailable
from functions.core.forwarding import Forwarded, custom_attributes, parse_attributes
from functions.core.manifest import Manifest
from functions.core.oip import HEADER_LENGTH
from functions.stores.s3 import make_client


class SageMakerForwarder:
    """Sends requests for GPU-target models to the endpoint (the container's /invocations)."""

    def __init__(
        self,
        *,
        endpoint: str,
        mode: str,
        async_input: str | None,
        runtime: Any = None,
        s3: Any = None,
    ) -> None:
        self.endpoint = endpoint
        self.mode = mode
        self.async_input = async_input
        self.runtime = runtime or make_client("sagemaker-runtime")
        self.s3 = s3 or (make_client("s3") if mode == "async" else None)

    def forward(
        self, manifest: Manifest, *, protocol: str, body: bytes, header_length: int | None
    ) -> Forwarded:
        """Invoke the endpoint; a container error keeps its status and message."""
        attributes = custom_attributes(manifest, protocol, header_length)
        content_type = "application/json" if header_length is None else "application/octet-stream"
        try:
            if self.mode == "realtime":
                return self._realtime(body, content_type, attributes)
            return self._async(manifest, body, content_type, attributes)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ModelError":  # the container answered with an error status
                raw: dict[str, Any] = dict(exc.response)
                status = int(raw.get("OriginalStatusCode", 502))
                message = str(raw.get("OriginalMessage") or error.get("Message", ""))
                return Forwarded(status, _error_body(message), {"content-type": "application/json"})
            raise ModelUnavailable(f"the GPU endpoint {self.endpoint} failed: {exc}") from None
        except BotoCoreError as exc:
            raise ModelUnavailable(
                f"the GPU endpoint {self.endpoint} is unreachable: {exc}"
            ) from None

    def _realtime(self, body: bytes, content_type: str, attributes: str) -> Forwarded:
        response = self.runtime.invoke_endpoint(
            EndpointName=self.endpoint,
            Body=body,
            ContentType=content_type,
            Accept="application/json, application/octet-stream",
            CustomAttributes=attributes,
        )
        headers = {"content-type": response.get("ContentType", "application/json")}
        length = parse_attributes(response.get("CustomAttributes")).get("header-length")
        if length:
            headers[HEADER_LENGTH] = length
        return Forwarded(200, response["Body"].read(), headers)

    def _async(
        self, manifest: Manifest, body: bytes, content_type: str, attributes: str
    ) -> Forwarded:
        if not self.async_input or self.s3 is None:
            raise ModelUnavailable("MAAS_GPU_ASYNC_INPUT is not set: nowhere to stage the request")
        target = urlparse(self.async_input)
        inference_id = str(uuid.uuid4())
        key = f"{target.path.strip('/')}/{inference_id}".lstrip("/")
        self.s3.put_object(Bucket=target.netloc, Key=key, Body=body, ContentType=content_type)
        response = self.runtime.invoke_endpoint_async(
            EndpointName=self.endpoint,
            InputLocation=f"s3://{target.netloc}/{key}",
            ContentType=content_type,
            CustomAttributes=attributes,
            InferenceId=inference_id,
        )
        doc = {
            "inference_id": response.get("InferenceId", inference_id),
            "output_location": response["OutputLocation"],
            "failure_location": response.get("FailureLocation"),
        }
        # The ticket: which model sent it and where SageMaker puts its answer, for
        # GET /v2/models/{name}/async/{id}; written before the client learns the id.
        ticket = doc | {"model": manifest.name, "version": manifest.version}
        self.s3.put_object(
            Bucket=target.netloc,
            Key=f"{key}{TICKET}",
            Body=orjson.dumps(ticket),
            ContentType="application/json",
        )
        path = f"/v2/models/{manifest.name}/async/{doc['inference_id']}"
        doc |= {"result": path}
        headers = {"content-type": "application/json", "location": path}
        return Forwarded(202, orjson.dumps(doc), headers)

    def result(self, name: str, inference_id: str) -> Forwarded:
        """The answer of an asynchronous inference `name` sent: read from S3 by this function,
        so a client needs no access to the bucket."""
        if self.mode != "async" or not self.async_input or self.s3 is None:
            raise InferenceNotFound(
                f"model '{name}' has no asynchronous inference '{inference_id}': the GPU "
                "endpoint is not asynchronous here"
            )
        target = urlparse(self.async_input)
        key = f"{target.path.strip('/')}/{inference_id}".lstrip("/")
        unknown = InferenceNotFound(
            f"model '{name}' has no asynchronous inference '{inference_id}'"
        )
        try:
            ticket = orjson.loads(self._read(target.netloc, f"{key}{TICKET}")[0] or b"null")
        except orjson.JSONDecodeError:
            ticket = None
        if not isinstance(ticket, dict) or ticket.get("model") != name:
            raise unknown
        done, media = self._read_location(ticket.get("output_location"))
        if done is not None:
            return Forwarded(200, done, {"content-type": media or "application/json"})
        failed, _ = self._read_location(ticket.get("failure_location"))
        if failed is not None:
            message = _error_message(failed)
            body = {"error": f"the asynchronous inference failed: {message}"}
            return Forwarded(500, orjson.dumps(body), {"content-type": "application/json"})
        pending = {"inference_id": inference_id, "status": "pending"}
        headers = {"content-type": "application/json", "retry-after": str(RETRY_AFTER)}
        return Forwarded(202, orjson.dumps(pending), headers)

    def _read_location(self, location: object) -> tuple[bytes | None, str | None]:
        if not isinstance(location, str) or not location.startswith("s3://"):
            return None, None
        parsed = urlparse(location)
        return self._read(parsed.netloc, parsed.path.lstrip("/"))

    def _read(self, bucket: str, key: str) -> tuple[bytes | None, str | None]:
        """An object's bytes and content type; (None, None) if there is none."""
        assert self.s3 is not None
        try:
            got = self.s3.get_object(Bucket=bucket, Key=key)
            return got["Body"].read(), got.get("ContentType")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise ModelUnavailable(f"asynchronous results are unreadable: {exc}") from None
        except BotoCoreError as exc:
            raise ModelUnavailable(f"asynchronous results are unreadable: {exc}") from None


TICKET = ".ticket.json"
RETRY_AFTER = 5  # seconds a client waits before asking again for a pending result


def _error_message(stored: bytes) -> str:
    """The message of a stored failure: the container's `{"error": ...}`, else the text."""
    try:
        doc = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return stored.decode("utf-8", "replace").strip()
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return stored.decode("utf-8", "replace").strip()


def _error_body(message: str) -> bytes:
    try:
        doc = orjson.loads(message)
        if isinstance(doc, dict) and "error" in doc:
            return orjson.dumps(doc)
    except orjson.JSONDecodeError:
        pass
    return orjson.dumps({"error": message})
