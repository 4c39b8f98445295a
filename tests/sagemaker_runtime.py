"""A loopback stand-in for the SageMaker runtime API (its two invoke operations), for tests.

It speaks the wire format botocore's `sagemaker-runtime` client expects (rest-json: headers,
202 for async, `ModelError` with status 424 and `x-amzn-errortype`) and does what SageMaker does
with the container: POST the body to /invocations with the custom attributes header; for async,
read the input from S3 and write the result (or the failure) back to S3.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlparse

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"


def runtime_app(container_url: str, s3: Any, outputs: str) -> Starlette:
    """`outputs` is the endpoint config's s3://bucket/prefix for async results."""

    def call(body: bytes, content_type: str, attributes: str | None) -> httpx.Response:
        headers = {"content-type": content_type}
        if attributes:
            headers[ATTRIBUTES] = attributes
        return httpx.post(f"{container_url}/invocations", content=body, headers=headers, timeout=60)

    async def invoke(request: Request) -> Response:
        body = await request.body()
        result = call(
            body,
            request.headers.get("content-type", "application/json"),
            request.headers.get(ATTRIBUTES),
        )
        if result.status_code >= 400:
            doc = {
                "message": f"Received client error ({result.status_code}) from primary with message {result.text!r}",
                "OriginalStatusCode": result.status_code,
                "OriginalMessage": result.text,
                "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/maas-gpu",
            }
            return JSONResponse(
                doc,
                status_code=424,
                headers={
                    "x-amzn-errortype": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
                },
            )
        headers = {
            "content-type": result.headers["content-type"],
            "x-amzn-invoked-production-variant": "AllTraffic",
        }
        if ATTRIBUTES in result.headers:
            headers[ATTRIBUTES] = result.headers[ATTRIBUTES]
        return Response(result.content, headers=headers)

    async def invoke_async(request: Request) -> Response:
        source = urlparse(request.headers["x-amzn-sagemaker-inputlocation"])
        body = s3.get_object(Bucket=source.netloc, Key=source.path.lstrip("/"))["Body"].read()
        inference_id = request.headers.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
        target = urlparse(outputs)
        output_key = f"{target.path.strip('/')}/outputs/{inference_id}.out"
        failure_key = f"{target.path.strip('/')}/errors/{inference_id}-error.out"
        result = call(
            body,
            request.headers.get("x-amzn-sagemaker-content-type", "application/json"),
            request.headers.get(ATTRIBUTES),
        )
        key = output_key if result.status_code < 400 else failure_key
        s3.put_object(Bucket=target.netloc, Key=key, Body=result.content)
        return JSONResponse(
            {"InferenceId": inference_id},
            status_code=202,
            headers={
                "x-amzn-sagemaker-outputlocation": f"s3://{target.netloc}/{output_key}",
                "x-amzn-sagemaker-failurelocation": f"s3://{target.netloc}/{failure_key}",
            },
        )

    return Starlette(
        routes=[
            Route("/endpoints/{name}/invocations", invoke, methods=["POST"]),
            Route("/endpoints/{name}/async-invocations", invoke_async, methods=["POST"]),
        ]
    )
