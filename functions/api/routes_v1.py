"""The simple v1 `:predict` endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.core.names import LATEST

from .deps import BodyDep, ModelName, RuntimeDep, VersionRef
from .inference import Route
from .routes_v2 import ERRORS, run_route
from .schemas import PredictResponse

router = APIRouter(tags=["v1"])

PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
}


PREDICT = {"response_model": PredictResponse, "responses": ERRORS, "openapi_extra": PREDICT_BODY}


@router.post("/v1/models/{name}/versions/{version}:predict", **PREDICT)  # type: ignore[arg-type]
async def version_predict(
    request: Request, runtime: RuntimeDep, body: BodyDep, name: ModelName, version: VersionRef
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for a version or alias."""
    return await run_route(request, runtime, body, Route("v1", name, version))


@router.post("/v1/models/{name}:predict", **PREDICT)  # type: ignore[arg-type]
async def predict(
    request: Request, runtime: RuntimeDep, body: BodyDep, name: ModelName
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for the latest version."""
    return await run_route(request, runtime, body, Route("v1", name, LATEST))
