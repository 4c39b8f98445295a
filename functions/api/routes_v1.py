"""The simple v1 `:predict` endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.core.dataplane import DataPlane
from functions.core.names import LATEST

from .deps import BodyDep, DataPlaneDep, ModelName, VersionRef
from .offload import offload
from .routes_v2 import ERRORS
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
    request: Request, plane: DataPlaneDep, body: BodyDep, name: ModelName, version: VersionRef
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for a version or alias."""
    return await run_predict(request, plane, body, name, version)


@router.post("/v1/models/{name}:predict", **PREDICT)  # type: ignore[arg-type]
async def predict(
    request: Request, plane: DataPlaneDep, body: BodyDep, name: ModelName
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for the latest version."""
    return await run_predict(request, plane, body, name, LATEST)


async def run_predict(
    request: Request, plane: DataPlane, body: bytes, name: str, version: str
) -> Response:
    """Run off the event loop (see offload)."""
    forwarded = await offload(
        request, lambda: plane.forward(name, version, body, None, protocol="v1")
    )
    if forwarded is not None:
        return Response(forwarded.body, status_code=forwarded.status, headers=forwarded.headers)
    content = await offload(request, lambda: plane.predict(name, version, body))
    return Response(content, media_type="application/json")
