"""onnxruntime sessions, sized from the CPUs this process may use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import Manifest

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


class OrtSessionFactory:
    """Creates onnxruntime sessions with a bounded intra-op thread pool on the chosen device."""

    def __init__(self, *, intra_op_threads: int | None = None, device: str = "cpu") -> None:
        self.intra_op_threads = intra_op_threads or usable_cpus()
        self.device = device

    def providers(self) -> list[str]:
        """The providers to ask for: only those this onnxruntime build has."""
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        return [p for p in PROVIDERS[self.device] if p in available] or ["CPUExecutionProvider"]

    def __call__(self, path: Path, manifest: Manifest) -> tuple[Session, str]:
        """Create a session; return it with the provider actually in use."""
        # From the path, in place: onnxruntime memory-maps external data beside the graph, and
        # no copy of the weights is made in Python. The cache's folder holds only the manifest's
        # files, at checked locations; onnxruntime itself refuses a graph whose external data
        # locations are absolute or leave the folder (tests/security holds it to that).
        session = make_session(str(path), self.intra_op_threads, self.providers())
        return session, session.get_providers()[0]


def make_session(model: bytes | str, threads: int, providers: list[str] | None = None) -> Any:
    """An onnxruntime session as the service makes them (the benchmarks and the gate too)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        model, sess_options=options, providers=providers or ["CPUExecutionProvider"]
    )
