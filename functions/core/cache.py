"""A local artifact cache: each artifact's files in a folder named by their digests, verified
as they arrive, so onnxruntime opens the graph in place and memory-maps its external data."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from .errors import IntegrityError, ModelUnavailable, StoreError
from .manifest import GRAPH_FILE, ArtifactFile, Manifest, check_artifact_path
from .observe import ModelLoad
from .store import Store, artifact_key

_RECORD = ".verified.json"  # beside the folders: what each verified file looked like on disk
_GB = 1e9


def _gb(count: float) -> str:
    return f"{count / _GB:.2f} GB"


def rss_bytes() -> int:
    """This process's resident memory now (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class ArtifactCache:
    """Artifacts on local disk (Lambda's /tmp), one folder per artifact, verified once.

    A file is hashed while it is downloaded and kept only if every file matches its manifest;
    the folder is then recorded with each file's size, mtime and inode, so a later load in the
    same environment trusts an untouched folder without reading gigabytes again, and fetches
    anew one that changed. Before any download the artifact is checked against the memory and
    disk it needs: a model that cannot fit is refused (a 503) with the limit and the shortfall.
    """

    def __init__(
        self,
        root: Path,
        *,
        memory_bytes: int | None = None,
        disk_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.memory_bytes = memory_bytes  # the function's memory, where it is known
        self.disk_bytes = disk_bytes  # at most this much of the disk for the cache, if set

    def path(self, manifest: Manifest) -> Path:
        """Where the artifact's graph lives once cached (in a folder of its own)."""
        return self.root / manifest.artifact_id / GRAPH_FILE

    def fetch(self, store: Store, manifest: Manifest, load: ModelLoad | None = None) -> Path:
        """Return the local path of the manifest's verified graph, downloading its files if needed.

        `load`, when given, receives the time each phase took and whether the cache had it.
        """
        load = load or ModelLoad(manifest.name, manifest.version, manifest.total_bytes)
        label = f"model '{manifest.name}' version {manifest.version}"
        for each in manifest.data_files:  # the store is not trusted to be well-formed
            check_artifact_path(each.path)
        self._check_memory(manifest, label)
        folder = self.path(manifest).parent
        started = time.perf_counter()
        if self._intact(folder, manifest):
            load.cached, load.verify_seconds = True, time.perf_counter() - started
            return folder / GRAPH_FILE
        try:
            self._discard(folder)
            self.root.mkdir(parents=True, exist_ok=True)
            self._make_room(manifest, label)
            staging = Path(tempfile.mkdtemp(dir=self.root, suffix=".part"))
        except OSError as exc:
            raise ModelUnavailable(
                f"{label}: artifact cache {self.root} is unusable: {exc}"
            ) from None
        try:
            started = time.perf_counter()
            for each in manifest.files:
                self._download(store, manifest, each, staging)
            downloaded = time.perf_counter()
            load.download_seconds = downloaded - started  # the digests included: one pass
            record = self._describe(staging, manifest)
            try:
                os.rename(staging, folder)
            except OSError:  # another process cached it meanwhile: theirs is as good
                if not self._intact(folder, manifest):
                    raise
                return folder / GRAPH_FILE
            self._record(folder, record)
            load.verify_seconds = time.perf_counter() - downloaded  # digests held, recorded
        except OSError as exc:
            raise ModelUnavailable(f"{label}: cannot write the artifact cache: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder / GRAPH_FILE

    def _download(
        self, store: Store, manifest: Manifest, file: ArtifactFile, staging: Path
    ) -> None:
        label = f"model '{manifest.name}' version {manifest.version}"
        target = staging / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        algorithm, expected = file.check
        key = artifact_key(manifest.name, manifest.version, file.path)
        try:
            actual = store.download(key, target, file.size_bytes, algorithm)
        except StoreError as exc:
            raise ModelUnavailable(f"{label}: cannot fetch {file.path}: {exc}") from None
        size = target.stat().st_size
        if size != file.size_bytes:
            raise IntegrityError(
                f"{label}: {file.path} is {size} bytes where the manifest records "
                f"{file.size_bytes}; refusing to serve it"
            )
        if actual != expected:
            raise IntegrityError(
                f"{label}: {file.path} does not match the manifest ({algorithm} "
                f"{actual[:12]}... where it records {expected[:12]}...); refusing to serve it"
            )

    def _check_memory(self, manifest: Manifest, label: str) -> None:
        if self.memory_bytes is None:
            return
        free = self.memory_bytes - rss_bytes()
        if manifest.total_bytes > free:
            raise ModelUnavailable(
                f"{label} is {_gb(manifest.total_bytes)}; this function has "
                f"{_gb(self.memory_bytes)} of memory, {_gb(free)} of it free: "
                f"{_gb(manifest.total_bytes - free)} short (give the function more memory, "
                "or serve the model from the container or GPU variant)"
            )

    def _make_room(self, manifest: Manifest, label: str) -> None:
        """Evict other artifacts, oldest first, until this one fits; refuse it if it cannot."""
        need = manifest.total_bytes
        while True:
            free = shutil.disk_usage(self.root).free
            if self.disk_bytes is not None:
                free = min(free, self.disk_bytes - self._used())
            if need <= free:
                return
            others = sorted(
                (p for p in self.root.iterdir() if p.is_dir() and not p.name.endswith(".part")),
                key=lambda p: p.stat().st_mtime,
            )
            if not others:
                limit = (
                    f"the cache's {_gb(self.disk_bytes)}"
                    if self.disk_bytes is not None
                    else f"the free space of {self.root}"
                )
                raise ModelUnavailable(
                    f"{label} is {_gb(need)}; {limit} leaves {_gb(max(free, 0))}: "
                    f"{_gb(need - max(free, 0))} short (raise the function's ephemeral storage)"
                )
            self._discard(others[0])

    def _used(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def _describe(self, folder: Path, manifest: Manifest) -> dict[str, list[int]]:
        record = {}
        for each in manifest.files:
            info = (folder / each.path).stat()
            record[each.path] = [info.st_size, info.st_mtime_ns, info.st_ino]
        return record

    def _record(self, folder: Path, record: dict[str, list[int]]) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.write_bytes(orjson.dumps(record))
        os.replace(tmp, folder.with_name(folder.name + _RECORD))

    def _intact(self, folder: Path, manifest: Manifest) -> bool:
        """The folder holds the files as they were verified (no file changed since)."""
        try:
            record = orjson.loads(folder.with_name(folder.name + _RECORD).read_bytes())
            return bool(record == self._describe(folder, manifest))
        except (OSError, orjson.JSONDecodeError):
            return False

    def _discard(self, folder: Path) -> None:
        folder.with_name(folder.name + _RECORD).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
