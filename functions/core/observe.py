"""What the core reports about model loads, for whoever observes them (logs, metrics, traces)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol


@dataclass
class ModelLoad:
    """One model load as it happens: filled in phase by phase (seconds)."""

    name: str
    version: int
    size_bytes: int
    cached: bool = False
    in_place: bool = False  # verified in the store's own folder (a local store), not copied
    download_seconds: float = 0.0
    verify_seconds: float = 0.0
    session_seconds: float = 0.0
    provider: str = ""

    @property
    def seconds(self) -> float:
        """The whole load."""
        return self.download_seconds + self.verify_seconds + self.session_seconds


class LoadObserver(Protocol):
    """Wraps each model load; the load's exception, if any, passes through it."""

    def loading(self, load: ModelLoad) -> AbstractContextManager[ModelLoad]:
        """A context around the load that yields `load` for the registry to fill in."""
        ...


class Unobserved:
    """Observes nothing."""

    def loading(self, load: ModelLoad) -> AbstractContextManager[ModelLoad]:
        """`load` itself, untouched."""
        return nullcontext(load)
