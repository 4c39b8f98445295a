"""Model names, versions and aliases: validated before they reach a key or a path."""

from __future__ import annotations

import re

from .errors import InvalidName

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
LATEST = "latest"
# Names seen valid: a set lookup instead of a regular expression per request (bounded).
_VALID: set[str] = set()
_VALID_MAX = 4096


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def check_name(name: str, *, kind: str = "model name") -> str:
    """Return `name` if it is a plain name, else raise InvalidName saying why."""
    if name in _VALID:
        return name
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"invalid {kind} {_shown(name)}: it must match {NAME_PATTERN} (lowercase letters, "
            "digits, '.', '_', '-'; at most 64 characters; no '..')"
        )
    if len(_VALID) < _VALID_MAX:
        _VALID.add(name)
    return name


def check_alias(alias: str) -> str:
    """Return `alias` if it can name an alias (a plain name that is not a number)."""
    check_name(alias, kind="alias")
    if alias.isdigit():
        raise InvalidName(f"invalid alias {_shown(alias)}: an alias cannot be a number")
    return alias


def parse_ref(ref: str) -> int | str:
    """Parse a version reference: a positive integer, `latest`, or an alias name."""
    if ref.isdigit():
        if not _VERSION.fullmatch(ref):
            raise InvalidName(f"invalid version {_shown(ref)}: versions are positive integers")
        return int(ref)
    return check_alias(ref)


def check_version(version: int) -> int:
    """Return `version` if it is a positive integer."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidName(f"invalid version {version!r}: versions are positive integers")
    return version
