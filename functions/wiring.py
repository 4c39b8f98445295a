"""The one place that wires production collaborators together."""

from __future__ import annotations

from functions.core.cache import ArtifactCache
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.settings import Settings
from functions.stores import open_store


def build_registry(settings: Settings) -> Registry:
    """A registry over the configured store, cache and onnxruntime sessions."""
    return Registry(
        repository=Repository(open_store(settings.store)),
        cache=ArtifactCache(settings.cache_dir),
        session_factory=OrtSessionFactory(intra_op_threads=settings.intra_op_threads),
        max_models=settings.max_models,
        alias_ttl=settings.alias_ttl_seconds,
    )
