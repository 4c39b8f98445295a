"""Timing helpers: warm up, then sample for a bounded time; p50 and p99 in microseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    """Per-call latencies of one layer."""

    p50_us: float
    p99_us: float
    calls: int


def measure(
    call: Callable[[], object], *, seconds: float, warmup: int = 20, min_calls: int = 30
) -> Sample:
    """Run `call` repeatedly for about `seconds` (at least `min_calls` times) after a warm-up."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < min_calls:
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1000)
    values = np.asarray(times)
    return Sample(float(np.percentile(values, 50)), float(np.percentile(values, 99)), len(times))
