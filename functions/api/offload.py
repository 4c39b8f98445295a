"""Blocking work (inference, store reads) off the event loop, except where that buys nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


async def offload(request: Request, call: Callable[[], T]) -> T:
    """Run `call` in the thread pool under uvicorn; inline under Lambda.

    A Lambda execution environment serves one request at a time, so a thread hop there only
    adds event-loop turns (measured: most of the handler's overhead at batch 1).
    """
    if request.app.state.inline:
        return call()
    return await run_in_threadpool(call)
