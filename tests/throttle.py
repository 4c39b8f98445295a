"""An HTTP proxy in front of moto's S3 that can answer S3's own throttling error (503 SlowDown)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>T1</RequestId></Error>"
)


class Throttle:
    """`throttling = True` makes every request a 503 SlowDown; otherwise requests pass through."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.throttling = False
        self.refused = 0
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self.forward, methods=["GET", "PUT", "POST", "HEAD", "DELETE"]
                )
            ]
        )

    async def forward(self, request: Request) -> Response:
        if self.throttling:
            self.refused += 1
            return Response(SLOW_DOWN, status_code=503, media_type="application/xml")
        url = f"{self.upstream}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as client:
            upstream = await client.request(
                request.method, url, content=await request.body(), headers=headers
            )
        passed = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        }
        return Response(upstream.content, status_code=upstream.status_code, headers=passed)
