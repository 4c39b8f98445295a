"""Fixtures of the core's tests: a clock moved by hand and a registry over each test's `repo`."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.core.cache import ArtifactCache
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(repo: Repository, clock: Clock, tmp_path: Path) -> Registry:
    return Registry(
        repository=repo,
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
        max_models=2,
        alias_ttl=30.0,
        clock=clock,
    )
