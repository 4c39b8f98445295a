"""The API Lambda handler: inference through `serve_inference`; FastAPI under Mangum for the rest.

FastAPI (about 220 ms of imports) and Mangum load only when a request other than infer or
predict arrives, so an inference cold start never pays for them. The runtime is built during
the function's init phase on Lambda (preloaded models included, and captured by SnapStart),
and on first use anywhere else: importing this module has no other effect.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from functions.runtime import Runtime, get_runtime, lambda_budget, register_restore_hooks

from .apigw import HttpApiEvent, HttpApiResponse, inference_request, request_id, response
from .inference import serve_inference
from .replies import error_reply


def handler(event: HttpApiEvent, context: Any) -> HttpApiResponse:
    """Answer an API Gateway HTTP API (payload 2.0) event."""
    return handle(get_runtime(), event, context)


def handle(runtime: Runtime, event: HttpApiEvent, context: Any) -> HttpApiResponse:
    """`handler` for a given runtime. Every exception becomes a reply; none escapes."""
    started = time.perf_counter()
    runtime.telemetry.lambda_context(context)
    request = inference_request(event, runtime.settings.api_base_path)
    if request is not None:
        reply = serve_inference(
            runtime,
            request.route,
            request.body,
            request.headers,
            budget=lambda_budget(context),
            request_id=request.request_id,
            started=started,
        )
        return response(reply)
    try:
        answer: HttpApiResponse = _adapter(runtime)(event, context)
    except Exception as exc:  # Mangum refusing the event, say: still a JSON 500, logged
        answer = response(error_reply(exc, runtime.telemetry, path=str(event.get("rawPath"))))
    runtime.telemetry.access(
        method=str(event.get("requestContext", {}).get("http", {}).get("method")),
        path=str(event.get("rawPath")),
        status=int(answer.get("statusCode", 500)),
        seconds=time.perf_counter() - started,
        request_id=request_id(event),
    )
    return answer


@cache
def _adapter(runtime: Runtime) -> Any:
    """The FastAPI app under Mangum, over the same runtime (and its sessions)."""
    from mangum import Mangum

    from .app import create_app

    app = create_app(runtime, inline=True)
    # lifespan off: Mangum would otherwise run the ASGI lifespan on every invocation.
    return Mangum(app, lifespan="off", api_gateway_base_path=runtime.settings.api_base_path)


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):  # on Lambda: build during the init phase
    register_restore_hooks(get_runtime())
