"""FastAPI's exception handlers, all answering through the one error table (`replies.py`)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from functions.core.errors import MaasError

from .replies import JSON, Reply, error_reply, make_reply


def as_response(reply: Reply) -> Response:
    """A Starlette response for a reply."""
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


def error_response(status: int, message: str) -> Response:
    """A JSON error body."""
    return as_response(make_reply(status, orjson.dumps({"error": message}), JSON))


async def _any(request: Request, exc: Exception) -> Response:
    """Domain errors by the table; anything else a logged 500."""
    telemetry = request.app.state.runtime.telemetry
    return as_response(error_reply(exc, telemetry, path=request.url.path))


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error_response(400, "invalid request: " + "; ".join(parts))


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(MaasError, _any)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    # Starlette answers with this one, then re-raises for the server to see (uvicorn logs it;
    # the Lambda handler catches it and keeps the reply).
    app.add_exception_handler(Exception, _any)
