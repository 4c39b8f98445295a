"""The simple v1 `:predict` endpoint, and clear errors for malformed model paths."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from functions.core.dataplane import DataPlane
from functions.core.names import LATEST, check_name
from functions.settings import Settings

from .body import read_body
from .deps import DataPlaneDep, ModelName, SettingsDep, VersionRef
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
    request: Request,
    plane: DataPlaneDep,
    settings: SettingsDep,
    name: ModelName,
    version: VersionRef,
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for a version or alias."""
    return await run_predict(request, plane, settings, name, version)


@router.post("/v1/models/{name}:predict", **PREDICT)  # type: ignore[arg-type]
async def predict(
    request: Request, plane: DataPlaneDep, settings: SettingsDep, name: ModelName
) -> Response:
    """`{"instances": [...]}` in, `{"predictions": [...]}` out, for the latest version."""
    return await run_predict(request, plane, settings, name, LATEST)


async def run_predict(
    request: Request, plane: DataPlane, settings: Settings, name: str, version: str
) -> Response:
    """Read the body within the limit and run off the event loop."""
    body = await read_body(request, settings.max_body_bytes)
    content = await offload(request, lambda: plane.predict(name, version, body))
    return Response(content, media_type="application/json")


fallback = APIRouter()


@fallback.api_route(
    "/{api:path}/models/{rest:path}", methods=["GET", "POST"], include_in_schema=False
)
def malformed_model_path(request: Request, api: str, rest: str) -> Response:
    """Name the problem when a model path matches no route (`..%2Fx`, an empty name...)."""
    missing = HTTPException(404, f"no such endpoint: {request.method} {request.url.path}")
    if api not in ("v1", "v2"):
        raise missing
    raw = request.scope.get("raw_path")
    if raw:  # the name as sent, before %2F was decoded into a path separator
        rest = raw.decode("latin-1").split("/models/", 1)[-1]
    check_name(unquote(rest.split("/", 1)[0].split(":", 1)[0]))
    raise missing
