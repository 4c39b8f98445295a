"""The hot path: v2 infer and v1 predict without FastAPI's routing (Lambda handler and uvicorn).

FastAPI's routing, dependency resolution and response machinery cost several times a small
model's run (measured: docs/benchmarks.md). These two routes are served here from the same data
plane and the same error table, producing the same status, headers and body as the FastAPI
routes; every other request, and any path this does not recognise, goes to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from functions.core.dataplane import DataPlane
from functions.core.errors import MaasError
from functions.core.oip import HEADER_LENGTH

from .status import log, status_of
from .wire import parse_header_length, too_large

try:  # SIMD base64: API Gateway delivers binary bodies base64-encoded; the stdlib is ~10x slower
    from pybase64 import b64decode, b64encode
except ImportError:  # pragma: no cover - the asset installs it; plain Python still works
    from base64 import b64decode, b64encode  # type: ignore[assignment]

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


def make_reply(status: int, body: bytes, media_type: str, extra: Mapping[str, str] = {}) -> Reply:
    headers = dict(extra)
    headers["content-length"] = str(len(body))
    headers["content-type"] = media_type
    return Reply(status, headers, body)


def serve(
    plane: DataPlane,
    route: Route,
    body: bytes,
    headers: Mapping[str, str],
    limit: int,
    budget: float | None = None,
) -> Reply:
    """Run one hot request; domain errors become the same `{"error"}` replies as FastAPI's."""
    try:
        too_large(len(body), limit)
        if route.protocol == "v1":
            forwarded = plane.forward(route.name, route.version, body, None, protocol="v1")
            if forwarded is None:
                return make_reply(
                    200, plane.predict(route.name, route.version, body, budget=budget), JSON
                )
        else:
            length_in = parse_header_length(headers.get("inference-header-content-length"))
            forwarded = plane.forward(route.name, route.version, body, length_in)
            if forwarded is None:
                content, length = plane.infer(
                    route.name, route.version, body, length_in, budget=budget
                )
                if length is None:
                    return make_reply(200, content, JSON)
                return make_reply(200, content, BINARY, {HEADER_LENGTH: str(length)})
        media = forwarded.headers.get("content-type", JSON)
        rest = {k: v for k, v in forwarded.headers.items() if k != "content-type"}
        return make_reply(forwarded.status, forwarded.body, media, rest)
    except MaasError as exc:
        status = status_of(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        return make_reply(status, orjson.dumps({"error": str(exc)}), JSON)


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
        "body": b64encode(reply.body).decode(),
        "headers": reply.headers,
        "isBase64Encoded": True,
    }


def from_event(
    plane: DataPlane,
    event: dict[str, Any],
    base_path: str,
    limit: int,
    *,
    budget: float | None = None,
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
    body = b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    # HTTP API payload 2.0 delivers header names in lower case.
    headers: dict[str, str] = event.get("headers") or {}
    return lambda_reply(serve(plane, route, body, headers, limit, budget))
