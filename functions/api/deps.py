"""Request dependencies as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from functions.core.dataplane import DataPlane
from functions.runtime import Runtime

from .body import read_body


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _dataplane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.runtime.plane
    return plane


async def _body(request: Request) -> bytes:
    limit = request.app.state.runtime.settings.max_body_bytes
    return await read_body(request.receive, request.headers, limit)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
DataPlaneDep = Annotated[DataPlane, Depends(_dataplane)]
BodyDep = Annotated[bytes, Depends(_body)]
ModelName = Annotated[str, Path(description="Model name (`^[a-z0-9][a-z0-9._-]{0,63}$`)")]
VersionRef = Annotated[
    str, Path(description="A version number, `latest`, or an alias such as `prod`")
]
