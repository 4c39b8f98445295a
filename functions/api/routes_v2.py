"""Open Inference Protocol v2 endpoints: thin wrappers over the data plane."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.core.errors import InvalidInput
from functions.core.names import LATEST
from functions.core.oip import dumps, loads
from functions.runtime import Runtime, lambda_budget

from .deps import BodyDep, DataPlaneDep, ModelName, RuntimeDep, VersionRef
from .errors import as_response, error_response
from .inference import Route, serve_inference
from .offload import offload
from .replies import forwarded_reply
from .schemas import (
    ErrorResponse,
    Health,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    RepositoryIndexEntry,
    ServerMetadata,
)

router = APIRouter(tags=["v2"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 503)
}


def json(doc: Any, status: int = 200) -> Response:
    """A JSON response encoded with orjson."""
    return Response(dumps(doc), status_code=status, media_type="application/json")


@router.get("/v2", response_model=ServerMetadata)
def server_metadata(plane: DataPlaneDep) -> Response:
    """Server name, version and protocol extensions."""
    return json(plane.server_metadata())


@router.get("/v2/health/live", response_model=Health)
def live() -> Response:
    """The process answers."""
    return json({"live": True})


@router.get("/v2/health/ready", response_model=Health, responses={503: {"model": ErrorResponse}})
def ready(plane: DataPlaneDep) -> Response:
    """The model store answers."""
    ok, reason = plane.server_ready()
    return json({"ready": True}) if ok else error_response(503, reason)


@router.get("/v2/models/{name}/versions/{version}", response_model=ModelMetadata, responses=ERRORS)
def version_metadata(plane: DataPlaneDep, name: ModelName, version: VersionRef) -> Response:
    """Inputs and outputs of a model version or alias."""
    return json(plane.model_metadata(name, version))


@router.get("/v2/models/{name}", response_model=ModelMetadata, responses=ERRORS)
def model_metadata(plane: DataPlaneDep, name: ModelName) -> Response:
    """Inputs and outputs of the model's latest version."""
    return json(plane.model_metadata(name, LATEST))


@router.get(
    "/v2/models/{name}/versions/{version}/ready", response_model=ModelReady, responses=ERRORS
)
def version_ready(plane: DataPlaneDep, name: ModelName, version: VersionRef) -> Response:
    """Load the version if needed: 200 when it can serve, 503 with the reason if not."""
    return json(plane.model_ready(name, version))


@router.get("/v2/models/{name}/ready", response_model=ModelReady, responses=ERRORS)
def model_ready(plane: DataPlaneDep, name: ModelName) -> Response:
    """Load the latest version if needed: 200 when it can serve, 503 with the reason if not."""
    return json(plane.model_ready(name, LATEST))


ASYNC_RESPONSES: dict[int | str, dict[str, Any]] = ERRORS | {
    202: {"description": "Still running: ask again after `Retry-After` seconds"},
    500: {"model": ErrorResponse, "description": "The inference failed on the GPU endpoint"},
}


@router.get(
    "/v2/models/{name}/async/{inference_id}",
    response_model=InferenceResponse,
    responses=ASYNC_RESPONSES,
)
async def async_result(
    request: Request, plane: DataPlaneDep, name: ModelName, inference_id: str
) -> Response:
    """The answer of an asynchronous inference (a GPU model in async mode): 202 while it runs,
    the stored response once done, the error if it failed. The API reads it from S3, so the
    client needs no access to the bucket."""
    remote = await offload(request, lambda: plane.async_result(name, inference_id))
    return as_response(forwarded_reply(remote))


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Triton binary tensor extension: a JSON header of "
                "`Inference-Header-Content-Length` bytes, then the tensors' bytes.",
            },
        },
    }
}


INFER = {"response_model": InferenceResponse, "responses": ERRORS, "openapi_extra": INFER_BODY}


@router.post("/v2/models/{name}/versions/{version}/infer", **INFER)  # type: ignore[arg-type]
async def version_infer(
    request: Request, runtime: RuntimeDep, body: BodyDep, name: ModelName, version: VersionRef
) -> Response:
    """Run a model version or alias. Tensors may be JSON or binary (Triton's extension)."""
    return await run_route(request, runtime, body, Route("v2", name, version))


@router.post("/v2/models/{name}/infer", **INFER)  # type: ignore[arg-type]
async def infer(request: Request, runtime: RuntimeDep, body: BodyDep, name: ModelName) -> Response:
    """Run the model's latest version. Tensors may be JSON or binary (Triton's extension)."""
    return await run_route(request, runtime, body, Route("v2", name, LATEST))


async def run_route(request: Request, runtime: Runtime, body: bytes, route: Route) -> Response:
    """Infer and predict through the one entry point, off the loop; under Mangum, the Lambda's
    remaining time bounds the run as it does on the handler's own path."""
    budget = lambda_budget(request.scope.get("aws.context"))
    reply = await offload(
        request, lambda: serve_inference(runtime, route, body, request.headers, budget=budget)
    )
    return as_response(reply)


INDEX_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RepositoryIndexRequest"}}
        },
    }
}


@router.post(
    "/v2/repository/index",
    response_model=list[RepositoryIndexEntry],
    responses=ERRORS,
    openapi_extra=INDEX_BODY,
)
async def repository_index(request: Request, plane: DataPlaneDep, body: BodyDep) -> Response:
    """Every published model version; `{"ready": true}` keeps those loaded in this container."""
    ready_only = False
    if body.strip():
        doc = loads(body)
        if not isinstance(doc, dict):
            raise InvalidInput('the request must be a JSON object, e.g. {"ready": true}')
        ready = doc.get("ready")
        if ready is not None and not isinstance(ready, bool):
            raise InvalidInput("'ready' must be true or false")
        ready_only = ready is True
    return json(await offload(request, lambda: plane.repository_index(ready_only=ready_only)))
