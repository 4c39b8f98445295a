"""A store in a local folder: the embedded default."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from functions.core import digests
from functions.core.errors import ObjectExists, ObjectNotFound, StoreUnavailable

_CHUNK = 8 << 20


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

    def _open(self, key: str) -> int:
        """A descriptor on the object's regular file; symbolic links are refused, not followed.

        An object is a regular file inside the root: a link (to /etc/passwd, or to another
        model's weights) put in the store behind its back is refused with the key it sits at.
        """
        path = self._path(key)
        here = self.root
        for part in PurePosixPath(key).parts[:-1]:
            here = here / part
            if here.is_symlink():
                raise StoreUnavailable(f"refusing {key}: {here} is a symbolic link")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"{self.uri}/{key} does not exist") from None
        except OSError as exc:
            if path.is_symlink():
                raise StoreUnavailable(f"refusing {key}: it is a symbolic link") from None
            raise StoreUnavailable(f"cannot read {key}: {exc}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ObjectNotFound(f"{self.uri}/{key} is not a file")
        return fd

    def read(self, key: str) -> bytes:
        """Return the object's bytes."""
        with os.fdopen(self._open(key), "rb") as handle:
            try:
                return handle.read()
            except OSError as exc:
                raise StoreUnavailable(f"cannot read {key}: {exc}") from None

    def _staged(self, key: str, fill: Callable[[BinaryIO], object]) -> tuple[Path, Path]:
        """A temporary file beside the object's path, filled by `fill`; (path, temporary)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key}: {exc}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreUnavailable(f"cannot write {key}: {exc}") from None
        return path, Path(tmp)

    def write(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically."""
        path, tmp = self._staged(key, lambda handle: handle.write(data))
        os.replace(tmp, path)

    def create(self, key: str, data: bytes) -> None:
        """Create the object; a hard link makes create-if-absent atomic."""
        path, tmp = self._staged(key, lambda handle: handle.write(data))
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ObjectExists(f"{key} already exists") from None
        finally:
            tmp.unlink(missing_ok=True)

    def download(
        self, key: str, dest: Path, size: int | None = None, algorithm: str = "sha256"
    ) -> str:
        """Copy the object into `dest`, hashing it on the way; return its digest.

        (The cache does not call this for a local store: it verifies the objects in place,
        `local_file`. It stays for the protocol: a copy out of the store, verified.)
        """
        digest = digests.new(algorithm)
        with (
            os.fdopen(self._open(key), "rb") as source,
            dest.open("wb") as sink,  # buffered: a write is whole or raises, never short
        ):
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                sink.write(chunk)
        return digest.hexdigest()

    def local_file(self, key: str) -> Path:
        """The object's file, checked as `_open` checks it (a regular file, no link on the way)."""
        os.close(self._open(key))
        return self._path(key)

    def upload(self, key: str, source: Path) -> None:
        """Copy the file `source` in as the object, atomically."""

        def fill(handle: BinaryIO) -> None:
            with source.open("rb") as stream:
                shutil.copyfileobj(stream, handle, _CHUNK)

        path, tmp = self._staged(key, fill)
        os.replace(tmp, path)

    def reconnect(self) -> None:
        """Nothing to reconnect: a folder."""

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
