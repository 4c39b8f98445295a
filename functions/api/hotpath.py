"""The hot path: v2 infer and v1 predict without FastAPI's routing (Lambda handler and uvicorn).

FastAPI's routing, dependency resolution and response machinery cost several times a small
model's run (measured: docs/benchmarks.md). These two routes are served here from the same data
plane and the same error table, producing the same status, headers and body as the FastAPI
routes; every other request, and any path this does not recognise, goes to FastAPI.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from functions.core.dataplane import DataPlane
from functions.core.errors import MaasError
from functions.core.oip import HEADER_LENGTH

from .body import parse_header_length, too_large, too_large_error
from .errors import log, status_of

_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_V1 = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?:predict$")
JSON = "application/json"
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class Route:
    """A recognised hot request."""

    protocol: str
    name: str
    version: str


def match(method: str, path: str) -> Route | None:
    """The hot route for `method path`, or None to let FastAPI handle it."""
    if method != "POST" or "%" in path:
        return None
    for protocol, pattern in (("v2", _V2), ("v1", _V1)):
        if m := pattern.match(path):
            return Route(protocol, m["name"], m["version"] or "latest")
    return None


@dataclass(frozen=True)
class Reply:
    """Status, headers (lower case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def _reply(status: int, body: bytes, media_type: str, extra: Mapping[str, str] = {}) -> Reply:
    headers = dict(extra)
    headers["content-length"] = str(len(body))
    headers["content-type"] = media_type
    return Reply(status, headers, body)


def serve(
    plane: DataPlane, route: Route, body: bytes, headers: Mapping[str, str], limit: int
) -> Reply:
    """Run one hot request; domain errors become the same `{"error"}` replies as FastAPI's."""
    try:
        too_large(len(body), limit)
        if route.protocol == "v1":
            forwarded = plane.forward(route.name, route.version, body, None, protocol="v1")
            if forwarded is None:
                return _reply(200, plane.predict(route.name, route.version, body), JSON)
        else:
            length_in = parse_header_length(headers.get("inference-header-content-length"))
            forwarded = plane.forward(route.name, route.version, body, length_in)
            if forwarded is None:
                content, length = plane.infer(route.name, route.version, body, length_in)
                if length is None:
                    return _reply(200, content, JSON)
                return _reply(200, content, BINARY, {HEADER_LENGTH: str(length)})
        media = forwarded.headers.get("content-type", JSON)
        rest = {k: v for k, v in forwarded.headers.items() if k != "content-type"}
        return _reply(forwarded.status, forwarded.body, media, rest)
    except MaasError as exc:
        status = status_of(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        return _reply(status, orjson.dumps({"error": str(exc)}), JSON)


def lambda_reply(reply: Reply) -> dict[str, Any]:
    """As Mangum returns it for API Gateway HTTP API (payload 2.0): binary bodies in base64."""
    if reply.headers["content-type"] == JSON:
        return {
            "statusCode": reply.status,
            "body": reply.body.decode(),
            "headers": reply.headers,
            "isBase64Encoded": False,
        }
    return {
        "statusCode": reply.status,
        "body": base64.b64encode(reply.body).decode(),
        "headers": reply.headers,
        "isBase64Encoded": True,
    }


def from_event(
    plane: DataPlane, event: dict[str, Any], base_path: str, limit: int
) -> dict[str, Any] | None:
    """Serve an API Gateway v2 event on the hot path, or None to hand it to Mangum."""
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
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return lambda_reply(serve(plane, route, body, headers, limit))


ASGIApp = Callable[
    [
        dict[str, Any],
        Callable[[], Awaitable[dict[str, Any]]],
        Callable[[dict[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class HotPathMiddleware:
    """ASGI: hot routes served directly (inference in the thread pool); the rest by `app`."""

    def __init__(self, app: ASGIApp, plane: DataPlane, limit: int) -> None:
        self.app = app
        self.plane = plane
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route: hot requests here, everything else to the wrapped app."""
        route = (
            match(scope.get("method", ""), scope.get("path", ""))
            if scope["type"] == "http"
            else None
        )
        if route is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        body = (
            None
            if declared.isdigit() and int(declared) > self.limit
            else await _read(receive, self.limit)
        )
        if body is None:
            reply = _reply(413, orjson.dumps({"error": str(too_large_error(self.limit))}), JSON)
        else:
            reply = await run_in_threadpool(serve, self.plane, route, body, headers, self.limit)
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})


async def _read(receive: Any, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
