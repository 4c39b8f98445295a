"""The API Lambda handler: infer and predict on the hot path; FastAPI under Mangum for the rest.

Built once per container. FastAPI (about 220 ms of imports) and Mangum are only loaded when a
request other than infer or predict arrives, so an inference cold start never pays for them.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from functions.api.hotpath import from_event
from functions.settings import get_settings
from functions.wiring import build_dataplane, build_forwarder, build_registry, preload

settings = get_settings()
registry = build_registry(settings)
for failure in preload(registry, settings.preload):
    logging.getLogger("maas.api").warning("preload failed: %s", failure)
plane = build_dataplane(settings, registry, build_forwarder(settings))
# Leave the reply this much time when the Lambda's remaining time bounds a run.
REPLY_MARGIN_SECONDS = 0.5


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
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 - REPLY_MARGIN_SECONDS if callable(remaining) else None
    hot = from_event(plane, event, settings.api_base_path, settings.max_body_bytes, budget=budget)
    if hot is not None:
        return hot
    response: dict[str, Any] = _adapter()(event, context)
    return response
