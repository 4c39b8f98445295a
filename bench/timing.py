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


def measure(call: Callable[[], object], *, seconds: float, min_calls: int = 30) -> Sample:
    """Warm up (0.2 s, at least 3 calls), then call repeatedly for `seconds` and `min_calls`."""
    deadline = time.perf_counter() + 0.2
    warm = 0
    while warm < 3 or time.perf_counter() < deadline:
        call()
        warm += 1
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < min_calls:
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1000)
    values = np.asarray(times)
    return Sample(float(np.percentile(values, 50)), float(np.percentile(values, 99)), len(times))


def measure_interleaved(
    calls: dict[str, Callable[[], object]], *, seconds: float, min_calls: int = 30, rounds: int = 10
) -> dict[str, Sample]:
    """`measure` for several calls side by side: each warmed up, then sampled in turns, round
    after round, so a machine that speeds up or slows down mid-run moves every layer alike."""
    for call in calls.values():
        measure(call, seconds=0.0, min_calls=1)  # the warm-up alone
    times: dict[str, list[float]] = {name: [] for name in calls}
    share = seconds / rounds
    for _ in range(rounds):
        for name, call in calls.items():
            deadline = time.perf_counter() + share
            taken = times[name]
            target = len(taken) + max(1, min_calls // rounds)
            while time.perf_counter() < deadline or len(taken) < target:
                start = time.perf_counter_ns()
                call()
                taken.append((time.perf_counter_ns() - start) / 1000)
    return {
        name: Sample(
            float(np.percentile(values, 50)), float(np.percentile(values, 99)), len(values)
        )
        for name, values in times.items()
    }
