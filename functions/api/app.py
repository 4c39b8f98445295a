"""Assembles the FastAPI app: routers, error table, OpenAPI components. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from functions import __version__
from functions.runtime import Runtime

from . import errors, routes_fallback, routes_v1, routes_v2
from .schemas import REQUEST_MODELS, ErrorResponse

ERROR_REF = "#/components/schemas/ErrorResponse"


def create_app(runtime: Runtime, *, inline: bool = False) -> FastAPI:
    """The serving app over `runtime`; the same app runs under Mangum and uvicorn.

    `inline` runs inference on the event loop: right for Lambda (one request at a time).
    """
    app = FastAPI(
        title="serverless-maas",
        version=__version__,
        summary="ONNX models served with the Open Inference Protocol v2 (and a simple v1 predict).",
    )
    app.state.runtime = runtime
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
