"""The one serving runtime: settings, telemetry, registry, data plane and forwarder, built once.

Every entry point (the Lambda API and batch handlers, `maas serve`, the GPU container, the CLI)
takes its runtime from `get_runtime()`: built once from the environment's settings, or the one
the CLI built from its options (`set_runtime`). Tests build their own with `build_runtime` and
pass it in; nothing else assembles these parts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from functions.core.cache import ArtifactCache
from functions.core.dataplane import DataPlane
from functions.core.deadline import default_watchdog
from functions.core.errors import MaasError
from functions.core.forwarding import Forwarder
from functions.core.oip import Limits
from functions.core.registry import Registry
from functions.core.repository import ManifestCheck, Repository
from functions.core.sessions import OrtSessionFactory
from functions.settings import Settings, SettingsError, get_settings
from functions.stores import open_store
from functions.telemetry import Telemetry
from functions.threads import cpu_budget

# Leave the reply (or the batch's records) this much time when the Lambda's remaining time
# bounds a run.
REPLY_MARGIN_SECONDS = 0.5


@dataclass(frozen=True, eq=False)
class Runtime:
    """What serving needs, built once per process (compared and hashed by identity)."""

    settings: Settings
    telemetry: Telemetry
    registry: Registry
    plane: DataPlane


def build_runtime(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    forwarder: Forwarder | None = None,
    server: bool = False,
) -> Runtime:
    """Assemble a runtime from `settings`; models in `settings.preload` are loaded now.

    `telemetry` and `forwarder` replace the ones the settings would give (tests use them).
    `server`: for `maas serve` and the GPU container, whose sessions do not spin between runs
    unless `MAAS_ORT_SPINNING` says so (the event loop shares the cores).
    """
    from functions import __version__

    started = time.perf_counter()
    telemetry = telemetry or Telemetry()
    registry = Registry(
        repository=Repository(open_store(settings.store, part_bytes=settings.s3_part_mb << 20)),
        cache=ArtifactCache(
            settings.cache_dir,
            memory_bytes=settings.memory_limit_bytes(),
            disk_bytes=None if settings.cache_max_mb is None else settings.cache_max_mb << 20,
        ),
        session_factory=OrtSessionFactory(
            intra_op_threads=settings.intra_op_threads or cpu_budget().threads,
            device=settings.device,
            spinning=not server if settings.ort_spinning is None else settings.ort_spinning,
        ),
        max_models=settings.max_models,
        alias_ttl=settings.alias_ttl_seconds,
        observer=telemetry,
        watchdog=default_watchdog(),
        verifier=build_verifier(settings),
    )
    plane = DataPlane(
        registry,
        version=__version__,
        forwarder=forwarder or build_forwarder(settings),
        limits=Limits(max_elements=settings.max_tensor_elements, max_batch=settings.max_batch),
        max_seconds=settings.max_inference_seconds,
    )
    runtime = Runtime(settings=settings, telemetry=telemetry, registry=registry, plane=plane)
    preload(runtime)
    telemetry.build_seconds = time.perf_counter() - started
    return runtime


_runtime: Runtime | None = None
_building = threading.Lock()


def get_runtime(*, server: bool = False) -> Runtime:
    """The process's runtime: the one `set_runtime` gave, else built from the environment
    (`server`: see `build_runtime`)."""
    global _runtime
    if _runtime is None:
        with _building:
            if _runtime is None:
                _runtime = build_runtime(get_settings(), server=server)
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Make `runtime` the process's (the CLI builds its own); None: build anew on next use."""
    global _runtime
    _runtime = runtime


def build_verifier(settings: Settings) -> ManifestCheck | None:
    """The manifest signature check the settings ask for (botocore is imported only then)."""
    if not settings.require_signature:
        return None
    if not settings.signing_key:
        raise SettingsError("MAAS_REQUIRE_SIGNATURE is on, but MAAS_SIGNING_KEY names no key")
    from functions.signing import KmsVerifier

    return KmsVerifier(settings.signing_key)


def build_forwarder(settings: Settings) -> Forwarder | None:
    """The SageMaker forwarder the settings ask for, if any (botocore is imported only then)."""
    if not settings.gpu_endpoint:
        return None
    from functions.api.forward import SageMakerForwarder

    return SageMakerForwarder(
        endpoint=settings.gpu_endpoint, mode=settings.gpu_mode, async_input=settings.gpu_async_input
    )


def preload(runtime: Runtime) -> list[str]:
    """Load `MAAS_PRELOAD` (`name:ref,...`) now, so no request pays for it; return failures."""
    failures = []
    started = time.perf_counter()
    for item in (part.strip() for part in runtime.settings.preload.split(",")):
        if not item:
            continue
        name, _, ref = item.partition(":")
        try:
            runtime.registry.runner(name, ref or "latest")
        except MaasError as exc:  # a broken preload must not stop the function serving others
            failures.append(f"{item}: {exc}")
            runtime.telemetry.warning("preload failed", model=item, error=str(exc))
    if runtime.settings.preload:
        runtime.telemetry.logger.info(
            "preloaded",
            extra={
                "models": runtime.settings.preload,
                "failures": len(failures),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    return failures


def register_restore_hooks(runtime: Runtime) -> bool:
    """Under SnapStart, have Lambda call `after_restore(runtime)` when it resumes a snapshot.

    `snapshot_restore_py` is the Lambda Python runtime's own module; elsewhere there is no
    snapshot to restore from, and nothing is registered (False).
    """
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_after_restore(after_restore, runtime)
    return True


def after_restore(runtime: Runtime) -> None:
    """Resume from a snapshot: what the init phase built stays (settings, preloaded sessions,
    their memory-mapped files in /tmp, the watchdog); the store's client is made anew, since the
    credentials it read at init belong to the environment that took the snapshot."""
    runtime.registry.repository.store.reconnect()
    runtime.telemetry.logger.info("snapshot restored", extra={"loaded": runtime.registry.loaded()})


def lambda_budget(context: Any) -> float | None:
    """The time a run may take in this invocation: what remains of it, less the margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 - REPLY_MARGIN_SECONDS if callable(remaining) else None
