"""API Gateway HTTP API (payload format 2.0) events and responses, typed.

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, NotRequired, TypedDict

from .inference import Route, match
from .replies import JSON, Reply

try:  # SIMD base64: API Gateway delivers binary bodies base64-encoded; the stdlib is ~10x slower
    from pybase64 import b64decode, b64encode
except ImportError:  # pragma: no cover - the asset installs it; plain Python still works
    from base64 import b64decode, b64encode  # type: ignore[assignment]


class HttpContext(TypedDict):
    """`requestContext.http`."""

    method: str
    path: str
    protocol: str
    sourceIp: str
    userAgent: str


class RequestContext(TypedDict):
    """`requestContext` (the fields the service reads; AWS sends more)."""

    http: HttpContext
    requestId: str
    stage: str


class HttpApiEvent(TypedDict):
    """An HTTP API payload 2.0 event."""

    version: str
    rawPath: str
    rawQueryString: str
    headers: dict[str, str]  # names in lower case
    requestContext: RequestContext
    isBase64Encoded: bool
    body: NotRequired[str]


class HttpApiResponse(TypedDict):
    """What the function returns for API Gateway to answer with."""

    statusCode: int
    headers: dict[str, str]
    body: str
    isBase64Encoded: bool


class Inference(NamedTuple):
    """An inference request taken from an event."""

    route: Route
    body: bytes
    headers: Mapping[str, str]
    request_id: str | None


def inference_request(event: HttpApiEvent, base_path: str) -> Inference | None:
    """The inference request an event carries, or None for any other request."""
    try:
        method = event["requestContext"]["http"]["method"]
        path = event["rawPath"]
    except (KeyError, TypeError):
        return None
    prefix = base_path.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/"):
            return None
        path = path[len(prefix) :]
    route = match(method, path)
    if route is None:
        return None
    raw = event.get("body") or ""
    body = b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    return Inference(route, body, event.get("headers") or {}, request_id(event))


def request_id(event: Any) -> str | None:
    """API Gateway's request id (the access log's `requestId`), if the event has one."""
    try:
        found = event["requestContext"]["requestId"]
    except (KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


def response(reply: Reply) -> HttpApiResponse:
    """As Mangum returns it for API Gateway HTTP API (payload 2.0): binary bodies in base64."""
    if reply.headers["content-type"] == JSON:
        return {
            "statusCode": reply.status,
            "headers": reply.headers,
            "body": reply.body.decode(),
            "isBase64Encoded": False,
        }
    return {
        "statusCode": reply.status,
        "headers": reply.headers,
        "body": b64encode(reply.body).decode(),
        "isBase64Encoded": True,
    }
