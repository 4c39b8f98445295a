"""The one table mapping domain errors to HTTP responses `{"error": "..."}`."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from functions.core.errors import MaasError

from .status import log, status_of


def error_response(status: int, message: str) -> Response:
    """A JSON error body."""
    return Response(
        orjson.dumps({"error": message}), status_code=status, media_type="application/json"
    )


async def _domain(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, MaasError)
    status = status_of(exc)
    if status >= 500:
        log.warning("request failed: %s", exc)
    return error_response(status, str(exc))


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


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal error")


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(MaasError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
