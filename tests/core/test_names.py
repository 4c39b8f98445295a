"""Names, versions and aliases are refused before they reach a key or a path."""

from __future__ import annotations

import pytest

from functions.core.errors import InvalidName
from functions.core.names import check_alias, check_name, parse_ref
from functions.core.store import alias_key, artifact_key, manifest_key


@pytest.mark.parametrize("name", ["digits", "a", "resnet-18", "my_model.v2", "0abc", "x" * 64])
def test_plain_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", "Digits", "-x", ".x", "a..b", "x" * 65, "x" * 300, "a b", "é"]
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid model name"):
        check_name(name)


def test_refusal_names_the_rule() -> None:
    with pytest.raises(InvalidName) as caught:
        check_name("../x")
    assert str(caught.value) == (
        "invalid model name '../x': it must match ^[a-z0-9][a-z0-9._-]{0,63}$ (lowercase "
        "letters, digits, '.', '_', '-'; at most 64 characters; no '..')"
    )


def test_long_names_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidName) as caught:
        check_name("x" * 300)
    assert "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'" in str(caught.value)


def test_refs() -> None:
    assert parse_ref("3") == 3
    assert parse_ref("latest") == "latest"
    assert parse_ref("prod") == "prod"
    with pytest.raises(InvalidName, match="versions are positive integers"):
        parse_ref("0")
    with pytest.raises(InvalidName, match="invalid alias '../prod'"):
        parse_ref("../prod")
    with pytest.raises(InvalidName, match="an alias cannot be a number"):
        check_alias("12")


def test_keys_follow_the_contract() -> None:
    assert artifact_key("digits", 3) == "models/digits/3/model.onnx"
    assert manifest_key("digits", 3) == "models/digits/3/manifest.json"
    assert alias_key("digits", "prod") == "models/digits/aliases/prod"
    with pytest.raises(InvalidName):
        artifact_key("../etc", 1)
    with pytest.raises(InvalidName):
        manifest_key("digits", 0)
