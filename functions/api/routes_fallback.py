"""Clear errors for model paths that match no route (`..%2Fx`, an empty name, a typo)."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from functions.core.names import check_name

router = APIRouter()


@router.api_route(
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
