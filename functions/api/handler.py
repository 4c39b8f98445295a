"""The API Lambda handler: the FastAPI app under Mangum, built once per container."""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from functions.api.app import create_app
from functions.settings import get_settings
from functions.wiring import build_registry

settings = get_settings()
registry = build_registry(settings)
app = create_app(registry=registry, settings=settings, inline=True)
# lifespan off: Mangum would otherwise run the ASGI lifespan on every invocation.
_adapter = Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer an API Gateway HTTP API (payload 2.0) event."""
    response: dict[str, Any] = _adapter(event, context)
    return response
