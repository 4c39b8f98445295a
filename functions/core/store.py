"""The store protocol every backend implements, and the keys the contract fixes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .manifest import GRAPH_FILE, check_artifact_path
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

    def download(
        self, key: str, dest: Path, size: int | None = None, algorithm: str = "sha256"
    ) -> str:
        """Stream the object into the file `dest`; return the digest of the bytes written.

        The digest (`algorithm`: `core/digests.py`) is computed as the bytes arrive: a verified
        file is never read twice. `size`, when known (the manifest says it), lets a backend
        fetch ranges in parallel.
        """
        ...

    def local_file(self, key: str) -> Path | None:
        """The object as a regular file on this machine, to be read in place; None where the
        backend keeps it elsewhere (S3). Raise ObjectNotFound or StoreUnavailable."""
        ...

    def upload(self, key: str, source: Path) -> None:
        """Create or replace the object with the file `source`'s bytes, streamed."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every key that starts with `prefix`."""
        ...

    def reconnect(self) -> None:
        """Drop connections and credentials (after a SnapStart restore); the next call makes new."""
        ...


def model_prefix(name: str) -> str:
    """Prefix of every object of model `name`."""
    return f"models/{check_name(name)}/"


def artifact_key(name: str, version: int, path: str = GRAPH_FILE) -> str:
    """Key of a version's ONNX graph, or of one of its external data files (`path`)."""
    if path != GRAPH_FILE:
        check_artifact_path(path)
    return f"{model_prefix(name)}{check_version(version)}/{path}"


def manifest_key(name: str, version: int) -> str:
    """Key of a version's manifest."""
    return f"{model_prefix(name)}{check_version(version)}/manifest.json"


def signature_key(name: str, version: int) -> str:
    """Key of a version's manifest signature (`maas publish --sign`)."""
    return f"{model_prefix(name)}{check_version(version)}/manifest.sig"


def alias_key(name: str, alias: str) -> str:
    """Key of the small object holding an alias's version."""
    return f"{model_prefix(name)}aliases/{check_alias(alias)}"
