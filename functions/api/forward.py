"""Forwarding to the SageMaker GPU endpoint: real-time InvokeEndpoint, or async via S3."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlparse

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import ModelUnavailable
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
            return self._async(body, content_type, attributes)
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

    def _async(self, body: bytes, content_type: str, attributes: str) -> Forwarded:
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
        headers = {"content-type": "application/json", "location": response["OutputLocation"]}
        return Forwarded(202, orjson.dumps(doc), headers)


def _error_body(message: str) -> bytes:
    try:
        doc = orjson.loads(message)
        if isinstance(doc, dict) and "error" in doc:
            return orjson.dumps(doc)
    except orjson.JSONDecodeError:
        pass
    return orjson.dumps({"error": message})
