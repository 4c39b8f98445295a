"""The GPU image's entry point: the same app plus SageMaker's contract, under uvicorn on 8080."""

from __future__ import annotations

import os

from functions.api.app import create_app, wrap
from functions.api.asgi import HotPathMiddleware
from functions.container import sagemaker
from functions.settings import Settings, get_settings
from functions.wiring import build_registry, preload


def create_container_app(settings: Settings) -> HotPathMiddleware:
    """The serving app (sessions on the configured device) with /ping and /invocations."""
    registry = build_registry(settings)
    preload(registry, settings.preload)
    app = create_app(registry=registry, settings=settings)
    app.include_router(sagemaker.router)
    return wrap(app, settings)


def main() -> None:
    """`docker run IMAGE serve`: SageMaker's `serve` argument needs no handling."""
    import uvicorn

    settings = get_settings()
    # Inside the container SageMaker reaches the server through the container's interface
    # (this is a container's port, not a host's).
    host = os.environ.get("MAAS_HOST", "0.0.0.0")  # nosec B104
    port = int(os.environ.get("MAAS_PORT", "8080"))
    uvicorn.run(create_container_app(settings), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()
