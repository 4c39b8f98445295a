"""A local artifact cache keyed by sha256, verified before any session is created."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from .errors import IntegrityError, ModelUnavailable, StoreError
from .manifest import Manifest
from .observe import ModelLoad
from .store import Store, artifact_key

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactCache:
    """Artifacts on local disk (Lambda's /tmp) under their sha256, checked on every load."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where an artifact with this digest lives."""
        return self.root / f"{sha256}.onnx"

    def fetch(self, store: Store, manifest: Manifest, load: ModelLoad | None = None) -> Path:
        """Return a verified local copy of the manifest's artifact, downloading it if needed.

        `load`, when given, receives the time each phase took and whether the cache had it.
        """
        load = load or ModelLoad(manifest.name, manifest.version, manifest.size_bytes)
        label = f"model '{manifest.name}' version {manifest.version}"
        target = self.path(manifest.sha256)
        started = time.perf_counter()
        if target.exists() and sha256_file(target) == manifest.sha256:
            load.cached, load.verify_seconds = True, time.perf_counter() - started
            return target
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root, suffix=".part")
            os.close(fd)
        except OSError as exc:
            raise ModelUnavailable(
                f"{label}: artifact cache {self.root} is unusable: {exc}"
            ) from None
        tmp = Path(tmp_name)
        try:
            started = time.perf_counter()
            try:
                store.download(artifact_key(manifest.name, manifest.version), tmp)
            except StoreError as exc:
                raise ModelUnavailable(f"{label}: cannot fetch the artifact: {exc}") from None
            except OSError as exc:
                raise ModelUnavailable(f"{label}: cannot write the artifact cache: {exc}") from None
            downloaded = time.perf_counter()
            load.download_seconds = downloaded - started
            actual = sha256_file(tmp)
            load.verify_seconds = time.perf_counter() - downloaded
            if actual != manifest.sha256:
                raise IntegrityError(
                    f"{label}: artifact sha256 {actual[:12]}... does not match the manifest's "
                    f"{manifest.sha256[:12]}...; refusing to serve it"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
