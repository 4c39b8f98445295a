"""The API Lambda handler: the FastAPI app under Mangum, built once per container."""

from __future__ import annotations

import logging
from typing import Any

from mangum import Mangum

from functions.api.app import create_app
from functions.api.forward import build_forwarder
from functions.api.hotpath import from_event
from functions.settings import get_settings
from functions.wiring import build_registry, preload

settings = get_settings()
registry = build_registry(settings)
for failure in preload(registry, settings.preload):
    logging.getLogger("maas.api").warning("preload failed: %s", failure)
app = create_app(
    registry=registry, settings=settings, inline=True, forwarder=build_forwarder(settings)
)
# lifespan off: Mangum would otherwise run the ASGI lifespan on every invocation.
_adapter = Mangum(app, lifespan="off", api_gateway_base_path=settings.api_base_path)


_plane = app.state.dataplane


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer an API Gateway HTTP API (payload 2.0) event: infer and predict on the hot path."""
    hot = from_event(_plane, event, settings.api_base_path, settings.max_body_bytes)
    if hot is not None:
        return hot
    response: dict[str, Any] = _adapter(event, context)
    return response
