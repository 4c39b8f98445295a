"""`maas serve`'s ASGI layers: bounded concurrency, then inference straight to the entry point."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from functions.core.errors import PayloadTooLarge
from functions.runtime import Runtime

from .batching import Batcher
from .body import read_body
from .inference import Route, inference_steps, match, serve_inference
from .replies import JSON, Reply, make_reply

ASGIApp = Callable[
    [
        dict[str, Any],
        Callable[[], Awaitable[dict[str, Any]]],
        Callable[[dict[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class InferenceMiddleware:
    """ASGI: infer and predict to the one entry point; the rest to `app`.

    A request for a model in memory is answered on the event loop, its run through the batcher
    (`functions.api.batching`); one that must load the model, re-read an alias or forward to
    the GPU endpoint (store and network calls) goes to the thread pool.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        settings = runtime.settings
        self.batcher = Batcher(
            enabled=settings.serve_batching,
            max_rows=settings.serve_batch_max_rows,
            delay_seconds=settings.serve_batch_delay_ms / 1000,
        )
        self._on_loop = runtime.plane.forwarder is None
        # Request ids for clients that send none: unique per process start, a counter after it
        # (no random bytes per request).
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route: inference here, everything else to the wrapped app (its line logged too)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = match(scope["method"], scope["path"]) if not scope.get("root_path") else None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or f"{self._prefix}-{next(self._count)}"
        if route is None:
            await self._other(scope, receive, send, started, request_id)
            return
        try:
            body = await read_body(receive, headers, self.runtime.settings.max_body_bytes)
        except PayloadTooLarge as exc:  # refused unread: answered (and logged) the same way
            reply = serve_inference(
                self.runtime,
                route,
                b"",
                headers,
                request_id=request_id,
                started=started,
                refused=exc,
            )
        else:
            reply = await self._serve(route, body, headers, request_id, started)
        await send_reply(send, reply)

    async def _serve(
        self, route: Route, body: bytes, headers: dict[str, str], request_id: str, started: float
    ) -> Reply:
        if self._on_loop and self.runtime.registry.ready(route.name, route.version):
            steps = inference_steps(
                self.runtime, route, body, headers, request_id=request_id, started=started
            )
            return await self.batcher.serve(steps)
        call = functools.partial(
            serve_inference,
            self.runtime,
            route,
            body,
            headers,
            request_id=request_id,
            started=started,
        )
        return await asyncio.get_running_loop().run_in_executor(None, call)

    async def _other(
        self, scope: dict[str, Any], receive: Any, send: Any, started: float, request_id: str
    ) -> None:
        status = 500

        async def observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self.runtime.telemetry.access(
                method=scope["method"],
                path=scope["path"],
                status=status,
                seconds=time.perf_counter() - started,
                request_id=request_id,
            )


class LazyApp:
    """ASGI: the app `build` returns, built on the first request that needs it (FastAPI's
    import alone is ~0.2 s: an inference cold start of `maas serve` does without it)."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self.build = build
        self.app: ASGIApp | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Build if needed; answer ASGI lifespan itself until then (the app defines none)."""
        if self.app is None and scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.app is None:
            self.app = self.build()
        await self.app(scope, receive, send)


def create_server_app(
    runtime: Runtime, build: Callable[[], ASGIApp] | None = None
) -> ConcurrencyLimit:
    """What uvicorn runs (`maas serve`, the GPU container): concurrency bound, inference on the
    loop, and the app `build` returns (default: `create_app`) for the rest, built when needed."""

    def default() -> ASGIApp:
        from .app import create_app

        return create_app(runtime)  # type: ignore[return-value]

    served = InferenceMiddleware(LazyApp(build or default), runtime)
    return ConcurrencyLimit(served, runtime.settings.serve_concurrency)


async def send_reply(send: Any, reply: Reply) -> None:
    """A reply as the two ASGI messages."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


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
            await send_reply(send, reply)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
