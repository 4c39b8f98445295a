"""onnxruntime sessions, sized from the CPUs this process may use."""

from __future__ import annotations

import os
from pathlib import Path

from .manifest import Manifest
from .runner import Session


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), never fewer than one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class OrtSessionFactory:
    """Creates CPU onnxruntime sessions with a bounded intra-op thread pool."""

    def __init__(self, *, intra_op_threads: int | None = None) -> None:
        self.intra_op_threads = intra_op_threads or usable_cpus()

    def __call__(self, path: Path, manifest: Manifest) -> tuple[Session, str]:
        """Create a session on the CPU provider."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return session, "CPUExecutionProvider"
