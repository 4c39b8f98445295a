"""Registry: resolution, alias promotion/rollback with TTL, LRU bound, integrity failures."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from functions.core.cache import ArtifactCache
from functions.core.errors import (
    IntegrityError,
    ModelNotFound,
    ModelUnavailable,
    VersionNotFound,
)
from functions.core.observe import ModelLoad
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.stores import LocalStore
from model_build.inspect_onnx import manifest_for
from tests import models
from tests.conftest import publish
from tests.core.conftest import Clock


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(LocalStore(tmp_path / "store"))


def test_alias_promotion_and_rollback_take_effect_after_the_ttl(
    repo: Repository, registry: Registry, clock: Clock
) -> None:
    # Given versions 1 and 2, with prod on 1
    publish(repo, "multi", models.multi_io(), alias="prod")
    publish(repo, "multi", models.multi_io())
    assert registry.runner("multi", "prod").manifest.version == 1
    # When prod is promoted to 2, the container keeps 1 until the TTL passes
    repo.set_alias("multi", "prod", 2)
    clock.now += 29
    assert registry.resolve("multi", "prod") == 1
    clock.now += 2
    assert registry.runner("multi", "prod").manifest.version == 2
    # And a rollback to 1 takes effect the same way
    repo.set_alias("multi", "prod", 1)
    clock.now += 31
    assert registry.resolve("multi", "prod") == 1


@pytest.mark.parametrize(("promoted_at", "used_at"), [(0.0, 0.5), (1.0, 29.0), (10.0, 25.0)])
def test_a_promotion_is_served_within_the_ttl(
    repo: Repository, registry: Registry, clock: Clock, promoted_at: float, used_at: float
) -> None:
    # Given prod on version 1, read at t=0 by a metadata request
    publish(repo, "multi", models.multi_io(), alias="prod")
    publish(repo, "multi", models.multi_io())
    start = clock.now
    assert registry.manifest("multi", "prod").version == 1
    # When prod is promoted to 2, and inference uses prod before the TTL has run out
    clock.now = start + promoted_at
    repo.set_alias("multi", "prod", 2)
    clock.now = start + used_at
    assert registry.runner("multi", "prod").manifest.version == 1  # allowed: within the TTL
    # Then from MAAS_ALIAS_TTL_SECONDS after the promotion on, inference serves 2 (one cache:
    # the TTL runs from the store read, never restarted by a second cache filled later)
    clock.now = start + promoted_at + registry.alias_ttl + 0.001
    assert registry.runner("multi", "prod").manifest.version == 2
    assert registry.manifest("multi", "prod").version == 2


def test_a_hot_model_is_not_the_one_evicted(repo: Repository, registry: Registry) -> None:
    # Given two loaded models (the bound is 2), `a` used again after `b`
    for name in ("a", "b", "c"):
        publish(repo, name, models.multi_io())
    registry.runner("a", "1")
    registry.runner("b", "1")
    registry.runner("a", "1")
    # When a third is loaded, the least recently used (b) goes, not the hot one
    registry.runner("c", "1")
    assert registry.loaded() == [("a", 1), ("c", 1)]


def test_model_loads_are_observed_phase_by_phase(
    repo: Repository, clock: Clock, tmp_path: Path
) -> None:
    seen: list[ModelLoad] = []

    class Recorder:
        @contextmanager
        def loading(self, load: ModelLoad) -> Iterator[ModelLoad]:
            yield load
            seen.append(load)

    registry = Registry(
        repository=repo,
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
        observer=Recorder(),
        clock=clock,
    )
    publish(repo, "multi", models.multi_io())
    registry.runner("multi", "1")
    (load,) = seen
    assert (load.name, load.version, load.cached, load.in_place) == ("multi", 1, False, True)
    # a local store's files are verified where they are: nothing to download
    assert load.download_seconds == 0 and load.verify_seconds > 0 and load.session_seconds > 0
    assert load.provider == "CPUExecutionProvider"
    assert load.size_bytes == repo.manifest("multi", 1).size_bytes


def test_latest_follows_new_versions_after_the_ttl(
    repo: Repository, registry: Registry, clock: Clock
) -> None:
    publish(repo, "multi", models.multi_io())
    assert registry.resolve("multi", "latest") == 1
    publish(repo, "multi", models.multi_io())
    assert registry.resolve("multi", "latest") == 1
    clock.now += 31
    assert registry.resolve("multi", "latest") == 2


def test_sessions_are_cached_with_an_lru_bound(repo: Repository, registry: Registry) -> None:
    for name in ("a", "b", "c"):
        publish(repo, name, models.multi_io())
    first = registry.runner("a", "1")
    assert registry.runner("a", "1") is first
    registry.runner("b", "1")
    registry.runner("c", "1")
    assert registry.loaded() == [("b", 1), ("c", 1)]


def test_unknown_model_version_and_alias(repo: Repository, registry: Registry) -> None:
    publish(repo, "multi", models.multi_io())
    with pytest.raises(ModelNotFound, match="model 'nope' is not published"):
        registry.runner("nope", "latest")
    with pytest.raises(ModelNotFound, match="model 'nope' is not published"):
        registry.runner("nope", "prod")
    with pytest.raises(VersionNotFound, match="model 'multi' has no version 7"):
        registry.runner("multi", "7")
    with pytest.raises(VersionNotFound, match="model 'multi' has no version or alias 'canary'"):
        registry.runner("multi", "canary")


def test_integrity_failure_refuses_only_that_model_and_recovers(
    repo: Repository, registry: Registry, tmp_path: Path
) -> None:
    # Given two models, one of whose artifact is corrupted in the store
    publish(repo, "good", models.multi_io())
    publish(repo, "bad", models.fixed_shape())
    artifact = tmp_path / "store" / "models" / "bad" / "1" / "model.onnx"
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"0123456789")
    # Then the corrupted one is refused with a clear reason
    with pytest.raises(IntegrityError) as caught:
        registry.runner("bad", "1")
    assert "model 'bad' version 1: model.onnx does not match the manifest" in str(caught.value)
    assert "refusing to serve it" in str(caught.value)
    # And the other keeps serving
    out = registry.runner("good", "1").run(
        [("features", np.ones((1, 4), np.float32)), ("ids", np.array([1], np.int64))]
    )
    assert out["next_ids"].tolist() == [2]
    # And once the artifact is restored, the model loads (failures are not cached)
    artifact.write_bytes(original)
    assert registry.runner("bad", "1").manifest.name == "bad"
    assert not list((tmp_path / "cache").glob("*.part"))


def test_bytes_that_match_their_sha256_but_are_no_model(
    repo: Repository, registry: Registry
) -> None:
    junk = b"this is not an onnx model"
    manifest, _ = manifest_for(models.multi_io(), name="junk")
    digest = hashlib.sha256(junk).hexdigest()
    repo.publish(replace(manifest, sha256=digest, size_bytes=len(junk), graph_blake3=None), junk)
    with pytest.raises(ModelUnavailable, match="model 'junk' version 1 cannot be loaded: "):
        registry.runner("junk", "1")


def test_publish_numbers_versions_and_never_overwrites(repo: Repository) -> None:
    assert publish(repo, "multi", models.multi_io()) == 1
    assert publish(repo, "multi", models.fixed_shape()) == 2
    # A half-finished publish left an artifact at 3: the next publish takes 4
    repo.store.create("models/multi/3/model.onnx", b"partial")
    assert publish(repo, "multi", models.multi_io()) == 4
    assert repo.versions("multi") == [1, 2, 4]
    assert repo.manifest("multi", 2).inputs[0].name == "x"
