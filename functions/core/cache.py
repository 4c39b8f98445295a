"""A local artifact cache: each artifact's files in a folder named by their digests, verified
as they arrive, so onnxruntime opens the graph in place and memory-maps its external data.

A store whose objects are already files on this machine (the local folder) is not copied: its
files are verified where they are and the session is created from them."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from . import digests
from .errors import IntegrityError, ModelUnavailable, StoreError
from .manifest import GRAPH_FILE, ArtifactFile, Manifest, check_artifact_path
from .observe import ModelLoad
from .store import Store, artifact_key

_RECORD = ".verified.json"  # per artifact, in the root: where its verified files are, and how
# each looked on disk (size, mtime, ctime, inode, device) when it was verified
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

    From a store that has the files on this machine (`Store.local_file`), nothing is copied:
    each file is hashed in place (memory-mapped, on every core) and the store's own folder is
    recorded and returned, so a 2.46 GB model costs no second copy on disk and no copy time.
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
        local = self._local_folder(store, manifest, label)
        if local is not None:
            return self._verify_in_place(local, manifest, load, label)
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
            self._record(manifest, folder, record)
            load.verify_seconds = time.perf_counter() - downloaded  # digests held, recorded
        except OSError as exc:
            raise ModelUnavailable(f"{label}: cannot write the artifact cache: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder / GRAPH_FILE

    def _local_folder(self, store: Store, manifest: Manifest, label: str) -> Path | None:
        """The folder holding the artifact's files in the store itself, if it has one."""
        graph: Path | None = None
        for each in manifest.files:
            key = artifact_key(manifest.name, manifest.version, each.path)
            try:
                path = store.local_file(key)
            except StoreError as exc:
                raise ModelUnavailable(f"{label}: cannot fetch {each.path}: {exc}") from None
            if path is None:
                return None
            graph = graph or path
        return None if graph is None else graph.parent

    def _verify_in_place(
        self, folder: Path, manifest: Manifest, load: ModelLoad, label: str
    ) -> Path:
        """Hash the store's own files where they are (unless recorded untouched since)."""
        started = time.perf_counter()
        load.in_place = True
        self._refuse_links(folder, label)
        if self._intact(folder, manifest):
            load.cached, load.verify_seconds = True, time.perf_counter() - started
            return folder / GRAPH_FILE
        try:
            record = self._describe(folder, manifest)  # before hashing: a later change shows
            for each in manifest.files:
                size = record[each.path][0]
                matches = size == each.size_bytes  # else the size is refused, unhashed
                actual = digests.mapped_digest(folder / each.path, each.check[0]) if matches else ""
                self._check(label, each, size, actual)
        except OSError as exc:
            raise ModelUnavailable(f"{label}: cannot read the store's files: {exc}") from None
        load.verify_seconds = time.perf_counter() - started
        try:
            self._record(manifest, folder, record)
        except OSError:  # nothing was copied: without the record, the next load verifies again
            pass
        return folder / GRAPH_FILE

    @staticmethod
    def _refuse_links(folder: Path, label: str) -> None:
        """onnxruntime opens whatever the graph names inside the folder it is given: in the
        store's own folder, a link (to /etc/passwd, or to another model) is refused outright."""

        def unreadable(error: OSError) -> None:  # a folder it cannot list could hide a link
            raise error

        try:
            for here, dirs, files in os.walk(folder, onerror=unreadable):
                for name in (*dirs, *files):
                    if os.path.islink(os.path.join(here, name)):
                        where = Path(here, name).relative_to(folder).as_posix()
                        raise ModelUnavailable(
                            f"{label}: refusing the store's folder {folder}: "
                            f"{where} is a symbolic link"
                        )
        except OSError as exc:
            raise ModelUnavailable(
                f"{label}: cannot check the store's folder {folder}: {exc}"
            ) from None

    def _download(
        self, store: Store, manifest: Manifest, file: ArtifactFile, staging: Path
    ) -> None:
        label = f"model '{manifest.name}' version {manifest.version}"
        target = staging / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        key = artifact_key(manifest.name, manifest.version, file.path)
        try:
            actual = store.download(key, target, file.size_bytes, file.check[0])
        except StoreError as exc:
            raise ModelUnavailable(f"{label}: cannot fetch {file.path}: {exc}") from None
        self._check(label, file, target.stat().st_size, actual)

    @staticmethod
    def _check(label: str, file: ArtifactFile, size: int, actual: str) -> None:
        """Refuse a file whose size or digest (`actual`) is not the manifest's."""
        algorithm, expected = file.check
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
            # ctime too: a copy that keeps the old mtime (`cp -p`, `touch -r`) still changes it
            record[each.path] = [
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_ino,
                info.st_dev,
            ]
        return record

    def _record_path(self, artifact_id: str) -> Path:
        return self.root / (artifact_id + _RECORD)

    def _record(self, manifest: Manifest, folder: Path, files: dict[str, list[int]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self._record_path(manifest.artifact_id)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"folder": str(folder), "files": files}))
        os.replace(tmp, target)

    def _intact(self, folder: Path, manifest: Manifest) -> bool:
        """`folder` holds the files as they were verified (no file changed since)."""
        try:
            record = orjson.loads(self._record_path(manifest.artifact_id).read_bytes())
            return bool(
                record == {"folder": str(folder), "files": self._describe(folder, manifest)}
            )
        except (OSError, orjson.JSONDecodeError):
            return False

    def _discard(self, folder: Path) -> None:
        self._record_path(folder.name).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
