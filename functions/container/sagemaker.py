"""SageMaker's container contract on top of the same app: GET /ping and POST /invocations.

SageMaker sends every request to /invocations; the model, version, protocol (v2 infer or v1
predict) and the binary header length travel in the `X-Amzn-SageMaker-Custom-Attributes` header.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.api.deps import BodyDep, DataPlaneDep, RuntimeDep
from functions.api.errors import as_response, error_response
from functions.api.inference import Route, serve_inference
from functions.api.offload import offload
from functions.core.errors import InvalidInput
from functions.core.forwarding import PROTOCOLS, parse_attributes
from functions.core.names import LATEST
from functions.core.oip import HEADER_LENGTH, dumps

ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
router = APIRouter(tags=["sagemaker"])


@router.get("/ping")
def ping(plane: DataPlaneDep) -> Response:
    """Healthy when the model store answers."""
    ok, reason = plane.server_ready()
    if not ok:
        return error_response(503, reason)
    return Response(dumps({"status": "healthy"}), media_type="application/json")


@router.post("/invocations")
async def invocations(request: Request, runtime: RuntimeDep, body: BodyDep) -> Response:
    """One inference for the model named in the custom attributes."""
    attributes = parse_attributes(request.headers.get(ATTRIBUTES))
    name = attributes.get("model")
    if not name:
        raise InvalidInput(f"name the model in {ATTRIBUTES}: model=NAME;version=V")
    version = attributes.get("version", LATEST)
    protocol = attributes.get("protocol", "v2")
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    raw = attributes.get("header-length")
    if raw is not None and not raw.isdigit():
        raise InvalidInput(f"header-length must be an integer, got {raw!r}")
    headers = {HEADER_LENGTH: raw} if raw is not None else {}
    route = Route(protocol, name, version)
    request_id = request.headers.get("x-amzn-sagemaker-inference-id")
    reply = await offload(
        request, lambda: serve_inference(runtime, route, body, headers, request_id=request_id)
    )
    if HEADER_LENGTH in reply.headers:  # SageMaker returns only these attributes to the caller
        reply.headers[ATTRIBUTES] = f"header-length={reply.headers[HEADER_LENGTH]}"
    return as_response(reply)
