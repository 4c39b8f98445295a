"""The registry: name + version or alias -> a loaded runner, cached per container."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from .cache import ArtifactCache
from .deadline import Watchdog, default_watchdog
from .errors import ManifestError, ModelUnavailable, StoreUnavailable, VersionNotFound
from .manifest import Manifest
from .names import check_name, parse_ref
from .observe import LoadObserver, ModelLoad, Unobserved
from .repository import ManifestCheck, Repository
from .runner import Runner, Session

Key = tuple[str, int]
T = TypeVar("T")
FOREVER = float("inf")
# Distinct (name, reference) resolutions kept; past it the table starts afresh (rare: only
# references that resolved are kept, and each names a published version or alias).
MAX_REFS = 4096


class SessionFactory(Protocol):
    """Creates an inference session from a verified local artifact."""

    def __call__(self, path: Path, manifest: Manifest) -> tuple[Session, str]:
        """Return the session and the name of the execution provider it runs on."""
        ...


class Registry:
    """Resolves references, loads artifacts once, keeps at most `max_models` sessions.

    One cache maps (name, reference) to a version: a version number for good, an alias or
    `latest` until `alias_ttl` seconds after the store was read, so a promotion reaches every
    warm container within the TTL. An alias with a canary sends each request to the canary
    version for its weight's share: by the hash of the request's key when the caller has one
    (the same key, the same version), at random otherwise. Runners are kept per
    (name, version), least recently used dropped first.
    """

    def __init__(
        self,
        *,
        repository: Repository,
        cache: ArtifactCache,
        session_factory: SessionFactory,
        max_models: int = 8,
        alias_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        observer: LoadObserver | None = None,
        watchdog: Watchdog | None = None,
        verifier: ManifestCheck | None = None,
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.session_factory = session_factory
        self.max_models = max(1, max_models)
        self.alias_ttl = alias_ttl
        self.clock = clock
        self.observer: LoadObserver = observer or Unobserved()
        self.watchdog = watchdog or default_watchdog()
        # Checks each manifest's signature before anything of its version is read or loaded
        self.verifier = verifier
        self._lock = threading.Lock()
        # -> (version, good until, canary version or None, its weight)
        self._refs: dict[tuple[str, str], tuple[int, float, int | None, float]] = {}
        self._runners: OrderedDict[Key, Runner] = OrderedDict()
        self._manifests: OrderedDict[Key, Manifest] = OrderedDict()
        self._loading: dict[Key, threading.Lock] = {}

    def resolve(self, name: str, ref: str, route_key: str | None = None) -> int:
        """Resolve `ref` to a version; aliases and `latest` are re-read after the TTL.
        `route_key`: the request's key, which picks a canary's share (None: at random)."""
        hit = self._refs.get((name, ref))
        if hit is None or self.clock() >= hit[1]:
            hit = self._refresh(name, ref)
        if hit[2] is not None and _share(route_key) < hit[3]:
            return hit[2]
        return hit[0]

    def _refresh(self, name: str, ref: str) -> tuple[int, float, int | None, float]:
        check_name(name)
        parsed = parse_ref(ref)
        if isinstance(parsed, int):
            hit: tuple[int, float, int | None, float] = (parsed, FOREVER, None, 0.0)
        else:
            # The TTL runs from before the read: the answer is never older than it says.
            until = self.clock() + self.alias_ttl
            route = self._guard(name, lambda: self.repository.route(name, parsed))
            hit = (route.version, until, route.canary, route.weight)
        if len(self._refs) >= MAX_REFS:
            self._refs.clear()
        self._refs[(name, ref)] = hit
        return hit

    def manifest(self, name: str, ref: str, route_key: str | None = None) -> Manifest:
        """The manifest of the version `ref` resolves to (versions are immutable: cached)."""
        return self._manifest(name, ref, self.resolve(name, ref, route_key))

    def _manifest(self, name: str, ref: str, version: int) -> Manifest:
        key = (name, version)
        with self._lock:
            cached = self._manifests.get(key)
            if cached is not None:
                self._manifests.move_to_end(key)
                return cached
        try:
            manifest = self._guard(
                name, lambda: self.repository.manifest(*key, verify=self.verifier)
            )
        except VersionNotFound:
            if ref.isdigit():
                raise
            # The name resolved, to a version that is gone: the alias is broken, not the request.
            raise ModelUnavailable(
                f"model '{name}': alias '{ref}' of model '{name}' points to version {key[1]}, "
                "which is not published"
            ) from None
        with self._lock:
            self._manifests[key] = manifest
            while len(self._manifests) > 256:
                self._manifests.popitem(last=False)
        return manifest

    def runner(self, name: str, ref: str, route_key: str | None = None) -> Runner:
        """A ready runner for `name` at `ref`, loading (download, verify, session) on first use."""
        key = (name, self.resolve(name, ref, route_key))
        runner = self._runners.get(key)
        if runner is not None:
            try:
                self._runners.move_to_end(key)  # one C call, atomic under the GIL
            except KeyError:  # evicted meanwhile by another thread: it stays usable for this call
                pass
            return runner
        return self._runner(name, ref, key[1])

    def _runner(self, name: str, ref: str, version: int) -> Runner:
        manifest = self._manifest(name, ref, version)
        key = (manifest.name, manifest.version)
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                runner = self._runners.get(key)
            if runner is None:
                runner = self._load(manifest)
                with self._lock:
                    self._runners[key] = runner
                    while len(self._runners) > self.max_models:
                        self._runners.popitem(last=False)
        return runner

    def ready(self, name: str, ref: str) -> bool:
        """True when `runner(name, ref)` answers from memory: no store call, no loading."""
        hit = self._refs.get((name, ref))
        return (
            hit is not None
            and self.clock() < hit[1]
            and (name, hit[0]) in self._runners
            and (hit[2] is None or (name, hit[2]) in self._runners)
        )

    def loaded_runner(self, name: str, version: int) -> Runner | None:
        """The runner if this container has loaded that version (no loading, no store call)."""
        with self._lock:
            return self._runners.get((name, version))

    def planned_provider(self) -> str:
        """The execution provider sessions are created on first (before any is loaded)."""
        providers = getattr(self.session_factory, "providers", None)
        return str(providers()[0]) if callable(providers) else "CPUExecutionProvider"

    def loaded(self) -> list[Key]:
        """The (name, version) pairs with a session in this container, least recent first."""
        with self._lock:
            return list(self._runners)

    def _load(self, manifest: Manifest) -> Runner:
        start = ModelLoad(manifest.name, manifest.version, manifest.total_bytes)
        with self.observer.loading(start) as load:
            path = self.cache.fetch(self.repository.store, manifest, load)
            began = time.perf_counter()
            try:
                session, provider = self.session_factory(path, manifest)
            except Exception as exc:  # onnxruntime raises its own types for unloadable bytes
                raise ModelUnavailable(
                    f"model '{manifest.name}' version {manifest.version} cannot be loaded: {exc}"
                ) from None
            load.session_seconds = time.perf_counter() - began
            load.provider = provider
        return Runner(manifest, session, provider=provider, watchdog=self.watchdog)

    @staticmethod
    def _guard(name: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except StoreUnavailable as exc:
            raise ModelUnavailable(
                f"model '{name}': the model store is unavailable: {exc}"
            ) from None
        except ManifestError as exc:
            raise ModelUnavailable(f"model '{name}': {exc}") from None


def _share(route_key: str | None) -> float:
    """Where a request falls in [0, 1): fixed by its key, else at random."""
    if route_key is None:
        # Traffic splitting, not security: a predictable draw harms nothing.
        return random.random()  # noqa: S311  # nosec B311
    digest = hashlib.blake2b(route_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
