"""Content digests: sha256 names an artifact's files; BLAKE3, recorded beside it, checks them.

sha256 is what the manifest, the cache's names and outside tools (signatures, `sha256sum`) go
by. Verifying a multi-gigabyte artifact at load with it would cost more than copying it (about
1.1 GB/s on one core here, against 2 GB/s for BLAKE3 on one core), so files published with a
BLAKE3 digest are verified with it, on the same single pass that writes them into the cache.
Both are cryptographic: a file that matches either is the file that was published.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final, Protocol

ALGORITHMS: Final = ("sha256", "blake3")
_CHUNK: Final = 8 << 20


class Digest(Protocol):
    """What hashlib's objects and blake3's have in common."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object:
        """Add bytes."""
        ...

    def hexdigest(self) -> str:
        """The digest so far, as lowercase hex."""
        ...


def new(algorithm: str) -> Digest:
    """A fresh digest; BLAKE3 on the calling thread only (the cache hashes beside its I/O)."""
    if algorithm == "blake3":
        from blake3 import blake3  # imported only where an artifact is verified

        digest: Digest = blake3(max_threads=1)
        return digest
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown digest algorithm {algorithm!r}")


def file_digests(path: Path) -> dict[str, str]:
    """Every algorithm's digest of a file, in one read."""
    digests = {algorithm: new(algorithm) for algorithm in ALGORITHMS}
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    return {algorithm: digest.hexdigest() for algorithm, digest in digests.items()}


def bytes_digests(data: bytes) -> dict[str, str]:
    """Every algorithm's digest of `data`."""
    digests = {algorithm: new(algorithm) for algorithm in ALGORITHMS}
    for digest in digests.values():
        digest.update(data)
    return {algorithm: digest.hexdigest() for algorithm, digest in digests.items()}
