"""A store in a local folder: the embedded default."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from functions.core.errors import ObjectExists, ObjectNotFound, StoreUnavailable


class LocalStore:
    """Objects as files under `root`; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise ObjectNotFound(f"invalid key {key!r}")
        return self.root.joinpath(*parts)

    def read(self, key: str) -> bytes:
        """Return the object's bytes."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"{self.uri}/{key} does not exist") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key}: {exc}") from None

    def _staged(self, key: str, data: bytes) -> tuple[Path, Path]:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key}: {exc}") from None
        return path, Path(tmp)

    def write(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically."""
        path, tmp = self._staged(key, data)
        os.replace(tmp, path)

    def create(self, key: str, data: bytes) -> None:
        """Create the object; a hard link makes create-if-absent atomic."""
        path, tmp = self._staged(key, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ObjectExists(f"{key} already exists") from None
        finally:
            tmp.unlink(missing_ok=True)

    def download(self, key: str, dest: Path) -> None:
        """Copy the object into `dest`."""
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.uri}/{key} does not exist") from None

    def list(self, prefix: str) -> Iterator[str]:
        """Yield keys under `prefix`, in sorted order (temp files excluded)."""
        base = self.root
        if not base.is_dir():
            return
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(base).as_posix()
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)
