"""The one inference entry point: v2 infer and v1 predict, on every path, observed alike.

The Lambda handler, `maas serve`'s middleware, the FastAPI routes and the GPU container's
/invocations all call `serve_inference`: it runs the data plane within the time budget, maps
every exception to a reply through the one error table, and writes the request's log line and
metrics. It never raises. `maas serve` drives the same steps (`inference_steps`) on its event
loop, where the model run may be batched with other requests' (`functions.api.batching`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import NamedTuple

from functions.core.dataplane import Steps, run_steps
from functions.core.errors import MaasError
from functions.core.oip import HEADER_LENGTH
from functions.runtime import Runtime
from functions.telemetry import current_request

from .replies import BINARY, JSON, Reply, error_reply, forwarded_reply, make_reply
from .wire import parse_header_length, too_large

_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_V1 = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?:predict$")


class Route(NamedTuple):
    """An inference request's protocol, model name and version reference."""

    protocol: str
    name: str
    version: str


def match(method: str, path: str) -> Route | None:
    """The inference route for `method path`, or None for any other request."""
    if method != "POST" or "%" in path:
        return None
    for protocol, pattern in (("v2", _V2), ("v1", _V1)):
        if m := pattern.match(path):
            return Route(protocol, m["name"], m["version"] or "latest")
    return None


def serve_inference(
    runtime: Runtime,
    route: Route,
    body: bytes,
    headers: Mapping[str, str],
    *,
    budget: float | None = None,
    request_id: str | None = None,
    started: float | None = None,
    refused: MaasError | None = None,
) -> Reply:
    """Answer one inference request; log it and measure it. Never raises.

    `refused`: the transport already refused the request (a body over the limit, unread).
    """
    return run_steps(
        inference_steps(
            runtime,
            route,
            body,
            headers,
            budget=budget,
            request_id=request_id,
            started=started,
            refused=refused,
        )
    )


def inference_steps(
    runtime: Runtime,
    route: Route,
    body: bytes,
    headers: Mapping[str, str],
    *,
    budget: float | None = None,
    request_id: str | None = None,
    started: float | None = None,
    refused: MaasError | None = None,
) -> Steps[Reply]:
    """`serve_inference` as steps: it yields the model run it needs (`Steps`)."""
    started = time.perf_counter() if started is None else started
    token = current_request.set(request_id)
    version: int | None = None
    error: str | None = None
    try:
        if refused is not None:
            raise refused
        if runtime.telemetry.tracer is None:
            reply, version = yield from _answer(runtime, route, body, headers, budget)
        else:
            span = runtime.telemetry.span("## inference", model=route.name, ref=route.version)
            with span as segment:
                reply, version = yield from _answer(runtime, route, body, headers, budget)
                segment.put_annotation("version", version)
    except Exception as exc:
        reply = error_reply(exc, runtime.telemetry, model=route.name, ref=route.version)
        error = str(exc) if isinstance(exc, MaasError) else type(exc).__name__
    finally:
        current_request.reset(token)
    runtime.telemetry.request(
        protocol=route.protocol,
        name=route.name,
        ref=route.version,
        version=version,
        status=reply.status,
        seconds=time.perf_counter() - started,
        request_id=request_id,
        error=error,
    )
    return reply


def _answer(
    runtime: Runtime,
    route: Route,
    body: bytes,
    headers: Mapping[str, str],
    budget: float | None,
) -> Steps[tuple[Reply, int]]:
    plane = runtime.plane
    too_large(len(body), runtime.settings.max_body_bytes)
    if route.protocol == "v1":
        length_in = None
    else:
        length_in = parse_header_length(headers.get(HEADER_LENGTH))
    # A client's X-Request-Id keeps its requests on one side of a canary (none: at random).
    route_key = headers.get("x-request-id")
    forwarded = (
        None
        if plane.forwarder is None  # no GPU endpoint: nothing to look up
        else plane.forward(
            route.name, route.version, body, length_in, protocol=route.protocol, route_key=route_key
        )
    )
    if forwarded is not None:
        remote, version = forwarded
        return forwarded_reply(remote), version
    if route.protocol == "v1":
        answer = yield from plane.predict_steps(
            route.name, route.version, body, budget=budget, route_key=route_key
        )
    else:
        answer = yield from plane.infer_steps(
            route.name, route.version, body, length_in, budget=budget, route_key=route_key
        )
    if answer.header_length is None:
        return make_reply(200, answer.body, JSON), answer.version
    return make_reply(
        200, answer.body, BINARY, {HEADER_LENGTH: str(answer.header_length)}
    ), answer.version
