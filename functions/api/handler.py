"""The API Lambda handler: infer and predict on the hot path; FastAPI under Mangum for the rest.

Built once per container. FastAPI (about 220 ms of imports) and Mangum are only loaded when a
request other than infer or predict arrives, so an inference cold start never pays for them.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from functions import __version__
from functions.api.forward import build_forwarder
from functions.api.hotpath import from_event
from functions.core.dataplane import DataPlane
from functions.settings import get_settings
from functions.wiring import build_registry, preload

settings = get_settings()
registry = build_registry(settings)
for failure in preload(registry, settings.preload):
    logging.getLogger("maas.api").warning("preload failed: %s", failure)
plane = DataPlane(registry, version=__version__, forwarder=build_forwarder(settings))


@cache
def _adapter() -> Any:
    """The FastAPI app under Mangum, sharing this container's data plane (and its sessions)."""
    from mangum import Mangum

    from functions.api.app import create_app

    app = create_app(registry=registry, settings=settings, inline=True, dataplane=plane)
    # lifespan off: Mangum would otherwise run the ASGI lifespan on every invocation.
    return Mangum(app, lifespan="off", api_gateway_base_path=settings.api_base_path)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer an API Gateway HTTP API (payload 2.0) event."""
    hot = from_event(plane, event, settings.api_base_path, settings.max_body_bytes)
    if hot is not None:
        return hot
    response: dict[str, Any] = _adapter()(event, context)
    return response
