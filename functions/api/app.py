"""Assembles the FastAPI app: routers, error table, OpenAPI components. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from functions import __version__
from functions.core.dataplane import DataPlane
from functions.core.forwarding import Forwarder
from functions.core.registry import Registry
from functions.settings import Settings
from functions.wiring import build_dataplane

from . import errors, routes_fallback, routes_v1, routes_v2
from .asgi import ConcurrencyLimit, HotPathMiddleware
from .schemas import REQUEST_MODELS, ErrorResponse

ERROR_REF = "#/components/schemas/ErrorResponse"


def create_app(
    *,
    registry: Registry,
    settings: Settings,
    inline: bool = False,
    forwarder: Forwarder | None = None,
    dataplane: DataPlane | None = None,
) -> FastAPI:
    """The serving app over `registry`; the same app runs under Mangum and uvicorn.

    `inline` runs inference on the event loop: right for Lambda (one request at a time).
    `forwarder` sends requests for GPU-target models to the GPU endpoint.
    """
    app = FastAPI(
        title="serverless-maas",
        version=__version__,
        summary="ONNX models served with the Open Inference Protocol v2 (and a simple v1 predict).",
    )
    app.state.dataplane = dataplane or build_dataplane(settings, registry, forwarder)
    app.state.settings = settings
    app.state.inline = inline
    app.include_router(routes_v2.router)
    app.include_router(routes_v1.router)
    app.include_router(routes_fallback.router)  # last: it matches any model path
    errors.install(app)
    _document_request_bodies(app)
    return app


def _document_request_bodies(app: FastAPI) -> None:
    """Add the request schemas that routes reference but decode by hand (for speed)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    # Validation failures answer 400 {"error"}, never FastAPI's 422 (errors.py).
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = {
                            "description": "Bad Request",
                            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                        }
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
            for model in REQUEST_MODELS:
                doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(doc.pop("$defs", {}))
                components[model.__name__] = doc
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_server_app(
    *, registry: Registry, settings: Settings, forwarder: Forwarder | None = None
) -> ConcurrencyLimit:
    """What `maas serve` runs under uvicorn: bounded concurrency, the hot path, the app."""
    app = create_app(registry=registry, settings=settings, forwarder=forwarder)
    return ConcurrencyLimit(wrap(app, settings), settings.serve_concurrency)


def wrap(app: FastAPI, settings: Settings) -> HotPathMiddleware:
    """Put the hot path in front of an app made by `create_app`."""
    return HotPathMiddleware(app, app.state.dataplane, settings.max_body_bytes)  # type: ignore[arg-type]
