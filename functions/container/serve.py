"""The GPU image's entry point: the same app plus SageMaker's contract, under uvicorn on 8080."""

from __future__ import annotations

import os
from typing import Any

from functions.api.asgi import ConcurrencyLimit, create_server_app
from functions.runtime import Runtime, get_runtime


def create_container_app(runtime: Runtime) -> ConcurrencyLimit:
    """The serving app (sessions on the configured device) with /ping and /invocations; FastAPI
    is imported on the first request that is not an inference (SageMaker's first /ping)."""

    def build() -> Any:
        from functions.api.app import create_app
        from functions.container import sagemaker

        app = create_app(runtime)
        app.include_router(sagemaker.router)
        return app

    return create_server_app(runtime, build)


def main() -> None:
    """`docker run IMAGE serve`: SageMaker's `serve` argument needs no handling."""
    import uvicorn

    runtime = get_runtime(server=True)
    # Inside the container SageMaker reaches the server through the container's interface
    # (this is a container's port, not a host's).
    host = os.environ.get("MAAS_HOST", "0.0.0.0")  # nosec B104
    port = int(os.environ.get("MAAS_PORT", "8080"))
    uvicorn.run(create_container_app(runtime), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
