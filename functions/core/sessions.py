"""onnxruntime sessions, sized from the CPUs this process may use."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import CUSTOM_OP_LIBRARIES, Manifest

if TYPE_CHECKING:
    from .runner import Session


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), never fewer than one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    # CUDA first; onnxruntime falls back to the CPU for what CUDA cannot run (or if it is absent).
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}

# Graph rewrites left out on the CPU. SkipLayerNormFusion turns Add + LayerNormalization into
# SkipLayerNormalization, whose CPU kernel is slower than the two it replaces: on an int8 encoder
# (the only graphs where it fires here; fp32 exports keep their own pattern) the transformer
# example runs its batch of 32 in 0.48x fp32's time without it and 0.59x with it, a 4-layer
# BERT-base-wide encoder in 96 ms against 108 (docs/benchmarks.md). CUDA keeps it: there the fused
# kernel is the fast one. onnxruntime ignores a name it does not know, so a test holds this one
# to a graph it rewrites.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OrtSessionFactory:
    """Creates onnxruntime sessions with a bounded intra-op thread pool on the chosen device."""

    def __init__(
        self, *, intra_op_threads: int | None = None, device: str = "cpu", spinning: bool = True
    ) -> None:
        self.intra_op_threads = intra_op_threads or usable_cpus()
        self.device = device
        self.spinning = spinning

    def providers(self) -> list[str]:
        """The providers to ask for: only those this onnxruntime build has."""
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        return [p for p in PROVIDERS[self.device] if p in available] or ["CPUExecutionProvider"]

    def __call__(self, path: Path, manifest: Manifest) -> tuple[Session, str]:
        """Create a session; return it with the provider actually in use."""
        # From the path, in place: onnxruntime memory-maps external data beside the graph, and
        # no copy of the weights is made in Python. The folder (the cache's, or a local store's
        # own) holds the manifest's files at checked locations and no link; onnxruntime itself
        # refuses a graph whose external data locations are absolute or leave the folder
        # (tests/security holds it to that).
        session = make_session(
            str(path),
            self.intra_op_threads,
            self.providers(),
            manifest.custom_ops,
            spinning=self.spinning,
        )
        return session, session.get_providers()[0]


def custom_ops_in(domains: set[str]) -> tuple[str, ...]:
    """The custom-op libraries a graph importing these operator domains needs."""
    return tuple(name for name, owned in CUSTOM_OP_LIBRARIES.items() if domains & set(owned))


@cache
def custom_op_library(name: str) -> str:
    """The shared library of a custom-op package, found without importing the package.

    (Importing onnxruntime_extensions imports onnx and numpy where onnx is installed, and switches
    protobuf to its pure-Python implementation for the whole process; the library alone is what
    onnxruntime registers.)
    """
    from importlib.util import find_spec

    if name not in CUSTOM_OP_LIBRARIES:
        raise RuntimeError(f"unknown custom-op library {name!r}")
    package = name.replace("-", "_")
    spec = find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("_extensions_pydll*.so"))
        if found:
            return str(found[0])
    raise RuntimeError(
        f"the model needs the {name} custom-op library, which is not installed here "
        f"(pip install {name})"
    )


def make_session(
    model: bytes | str,
    threads: int,
    providers: list[str] | None = None,
    custom_ops: tuple[str, ...] = (),
    *,
    spinning: bool = True,
) -> Any:
    """An onnxruntime session as the service makes them (the benchmarks and the gate too),
    with the custom-op libraries `custom_ops` registered (only those: most models need none).

    `spinning` False: the intra-op threads sleep between runs instead of spinning for the next
    (a server's event loop needs that core: docs/benchmarks.md, peers)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for library in custom_ops:
        options.register_custom_ops_library(custom_op_library(library))
    providers = providers or ["CPUExecutionProvider"]
    on_cpu = "CUDAExecutionProvider" not in providers
    return ort.InferenceSession(
        model,
        sess_options=options,
        providers=providers,
        disabled_optimizers=list(CPU_DISABLED_OPTIMIZERS) if on_cpu else None,
    )
