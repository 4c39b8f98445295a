"""The one place that wires production collaborators together."""

from __future__ import annotations

from functions.core.cache import ArtifactCache
from functions.core.dataplane import DataPlane
from functions.core.forwarding import Forwarder
from functions.core.oip import Limits
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.settings import Settings
from functions.stores import open_store
from functions.threads import cpu_budget


def build_registry(settings: Settings) -> Registry:
    """A registry over the configured store, cache and onnxruntime sessions."""
    return Registry(
        repository=Repository(open_store(settings.store)),
        cache=ArtifactCache(settings.cache_dir),
        session_factory=OrtSessionFactory(
            intra_op_threads=settings.intra_op_threads or cpu_budget().threads,
            device=settings.device,
        ),
        max_models=settings.max_models,
        alias_ttl=settings.alias_ttl_seconds,
    )


def build_forwarder(settings: Settings) -> Forwarder | None:
    """The SageMaker forwarder the settings ask for, if any (botocore is imported only then)."""
    if not settings.gpu_endpoint:
        return None
    from functions.api.forward import SageMakerForwarder

    return SageMakerForwarder(
        endpoint=settings.gpu_endpoint, mode=settings.gpu_mode, async_input=settings.gpu_async_input
    )


def build_dataplane(
    settings: Settings, registry: Registry, forwarder: Forwarder | None = None
) -> DataPlane:
    """The data plane with the settings' limits and time budget."""
    from functions import __version__

    return DataPlane(
        registry,
        version=__version__,
        forwarder=forwarder,
        limits=Limits(max_elements=settings.max_tensor_elements, max_batch=settings.max_batch),
        max_seconds=settings.max_inference_seconds,
    )


def preload(registry: Registry, spec: str) -> list[str]:
    """Load `name:ref,...` now (at init, so the first request does not pay); return failures."""
    from functions.core.errors import MaasError

    failures = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, ref = item.partition(":")
        try:
            registry.runner(name, ref or "latest")
        except MaasError as exc:  # a broken preload must not stop the function from serving others
            failures.append(f"{item}: {exc}")
    return failures
