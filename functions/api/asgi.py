"""The hot path as ASGI middleware, in front of the FastAPI app under uvicorn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from functions.core.dataplane import DataPlane

from .hotpath import JSON, Reply, make_reply, match, serve
from .wire import too_large_error

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
            reply = make_reply(413, orjson.dumps({"error": str(too_large_error(self.limit))}), JSON)
        else:
            reply = await run_in_threadpool(serve, self.plane, route, body, headers, self.limit)
        await _send(send, reply)


async def _send(send: Any, reply: Reply) -> None:
    """A reply as the two ASGI messages."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
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


class ConcurrencyLimit:
    """ASGI: at most `limit` HTTP requests in flight; the next gets a 503 naming the limit."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Admit or refuse (the event loop is single-threaded: the counter needs no lock)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            message = (
                f"the server has {self.in_flight} requests in flight, its limit "
                f"(MAAS_SERVE_CONCURRENCY={self.limit}); retry shortly"
            )
            reply = make_reply(503, orjson.dumps({"error": message}), JSON, {"retry-after": "1"})
            await _send(send, reply)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
