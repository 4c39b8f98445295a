"""Weighted aliases: a canary's share of requests, by request key or at random; its end."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from functions.core.errors import InvalidInput, ModelUnavailable
from functions.core.registry import Registry
from functions.core.repository import AliasRoute, Repository
from functions.stores import LocalStore
from tests import models
from tests.conftest import publish
from tests.core.conftest import Clock


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = Repository(LocalStore(tmp_path / "store"))
    for _ in range(3):
        publish(repo, "multi", models.multi_io())
    return repo


def test_a_canary_at_10_percent_gets_10_percent_of_2000_requests(
    repo: Repository, registry: Registry
) -> None:
    repo.set_alias("multi", "prod", 1, canary=(2, 0.10))
    rng = random.Random(7)
    keyed = [registry.resolve("multi", "prod", f"req-{rng.getrandbits(64):x}") for _ in range(2000)]
    random.seed(7)  # requests without a key draw from the process's generator
    unkeyed = [registry.resolve("multi", "prod") for _ in range(2000)]
    for answered in (keyed, unkeyed):
        assert set(answered) == {1, 2}
        assert abs(answered.count(2) / 2000 - 0.10) <= 0.02, answered.count(2)


def test_the_same_request_key_always_gets_the_same_version(
    repo: Repository, registry: Registry
) -> None:
    repo.set_alias("multi", "prod", 1, canary=(2, 0.5))
    keys = [f"client-{i}" for i in range(200)]
    first = [registry.resolve("multi", "prod", k) for k in keys]
    assert {1, 2} == set(first)
    for _ in range(3):
        assert [registry.resolve("multi", "prod", k) for k in keys] == first
    # and a fresh container (another registry) agrees: the split is by the key's hash
    other = Registry(
        repository=repo,
        cache=registry.cache,
        session_factory=registry.session_factory,
        alias_ttl=30.0,
    )
    assert [other.resolve("multi", "prod", k) for k in keys] == first


def test_a_rollback_takes_effect_within_the_alias_ttl(
    repo: Repository, registry: Registry, clock: Clock
) -> None:
    repo.set_alias("multi", "prod", 1, canary=(3, 0.5))
    assert {registry.resolve("multi", "prod", f"k{i}") for i in range(100)} == {1, 3}
    ended = {"outcome": "rolled back", "canary": 3, "from": 1, "reason": "error rate"}
    repo.set_alias("multi", "prod", 1, ended=ended)
    clock.now += registry.alias_ttl + 0.001
    assert {registry.resolve("multi", "prod", f"k{i}") for i in range(100)} == {1}
    doc = repo.alias_doc("multi", "prod")
    assert doc["version"] == 1 and "canary" not in doc
    assert doc["ended"]["reason"] == "error rate" and doc["ended"]["at"]


def test_runners_and_manifests_follow_the_split(repo: Repository, registry: Registry) -> None:
    repo.set_alias("multi", "prod", 1, canary=(2, 0.5))
    keys = [f"k{i}" for i in range(40)]
    for key in keys:
        version = registry.resolve("multi", "prod", key)
        assert registry.runner("multi", "prod", key).manifest.version == version
        assert registry.manifest("multi", "prod", key).version == version
    # ready: only once both sides are loaded (a request on either side needs no loading)
    assert registry.ready("multi", "prod")


def test_ready_waits_for_the_canary_too(repo: Repository, registry: Registry) -> None:
    registry.runner("multi", "1")
    repo.set_alias("multi", "prod", 1, canary=(2, 0.2))
    registry.resolve("multi", "prod", "x")
    assert not registry.ready("multi", "prod")
    registry.runner("multi", "2")
    assert registry.ready("multi", "prod")


def test_plain_aliases_keep_their_format(repo: Repository, tmp_path: Path) -> None:
    repo.set_alias("multi", "prod", 2)
    raw = (tmp_path / "store" / "models" / "multi" / "aliases" / "prod").read_bytes()
    assert raw == b"2\n"
    assert repo.route("multi", "prod") == AliasRoute(2)
    assert repo.aliases("multi") == {"prod": 2}
    repo.set_alias("multi", "prod", 2, canary=(3, 0.25))
    assert repo.route("multi", "prod") == AliasRoute(2, 3, 0.25)
    assert repo.aliases("multi") == {"prod": 2}  # the stable version
    assert repo.route("multi", "3") == AliasRoute(3)


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ((3, 0.0), "a canary's weight must be between 0 and 1, got 0.0"),
        ((3, 1.0), "a canary's weight must be between 0 and 1, got 1.0"),
        ((2, 0.1), "the canary is version 2, which the alias serves"),
    ],
)
def test_bad_canaries_are_refused(
    repo: Repository, canary: tuple[int, float], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        repo.set_alias("multi", "prod", 2, canary=canary)


@pytest.mark.parametrize(
    "doc",
    [
        b'{"version": 1, "canary": {"version": 2, "weight": 1.5}}',
        b'{"version": 1, "canary": {"version": 0, "weight": 0.5}}',
        b'{"version": "1"}',
        b"[1, 2]",
        b"{not json",
    ],
)
def test_a_malformed_alias_object_is_refused(
    repo: Repository, registry: Registry, tmp_path: Path, doc: bytes
) -> None:
    (tmp_path / "store" / "models" / "multi" / "aliases").mkdir(exist_ok=True)
    (tmp_path / "store" / "models" / "multi" / "aliases" / "prod").write_bytes(doc)
    with pytest.raises(ModelUnavailable, match="alias 'prod' of model 'multi' is malformed"):
        registry.resolve("multi", "prod", "k")
    assert "prod" not in repo.aliases("multi")
    assert orjson.dumps(repo.versions("multi")) == b"[1,2,3]"
