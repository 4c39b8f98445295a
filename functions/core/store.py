"""The store protocol every backend implements, and the keys the contract fixes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .names import check_alias, check_name, check_version


class Store(Protocol):
    """A flat key -> bytes object store (a folder or an S3 bucket and prefix)."""

    uri: str

    def read(self, key: str) -> bytes:
        """Return the object's bytes; raise ObjectNotFound or StoreUnavailable."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Create or replace the object."""
        ...

    def create(self, key: str, data: bytes) -> None:
        """Create the object; raise ObjectExists if the key is taken (never overwrite)."""
        ...

    def download(self, key: str, dest: Path) -> None:
        """Stream the object into the file `dest`."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every key that starts with `prefix`."""
        ...


def model_prefix(name: str) -> str:
    """Prefix of every object of model `name`."""
    return f"models/{check_name(name)}/"


def artifact_key(name: str, version: int) -> str:
    """Key of a version's ONNX artifact."""
    return f"{model_prefix(name)}{check_version(version)}/model.onnx"


def manifest_key(name: str, version: int) -> str:
    """Key of a version's manifest."""
    return f"{model_prefix(name)}{check_version(version)}/manifest.json"


def alias_key(name: str, alias: str) -> str:
    """Key of the small object holding an alias's version."""
    return f"{model_prefix(name)}aliases/{check_alias(alias)}"
